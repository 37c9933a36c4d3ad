# ml-connector: `make demo` runs the whole system locally, `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export ML_CONNECTOR_HOME ?= $(CURDIR)/.ml-connector
export DAGSTER_HOME ?= $(ML_CONNECTOR_HOME)/dagster

.PHONY: install test demo bench chaos lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

demo: $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ml-connector demo

bench: $(STAMP)
	$(BIN)/python -m bench.run_all $(BENCH)

# Overlapping runs under faults, kills and forged webhooks, then an exact verification;
# on the SQLite ledger and on Postgres (CONNECTOR_TEST_POSTGRES_URL, else the local server).
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos $(CHAOS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .ml-connector .pytest_cache
