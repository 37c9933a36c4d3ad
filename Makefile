# ml-connector: `make demo` runs the whole system locally, `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export ML_CONNECTOR_HOME ?= $(CURDIR)/.ml-connector
export DAGSTER_HOME ?= $(ML_CONNECTOR_HOME)/dagster

.PHONY: install test demo bench bench-scale lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv (from PyPI, into the venv itself) resolves and installs the ~150 dependencies in
# parallel: a cold install takes well under a minute instead of about four with pip.
$(BIN)/uv: | $(BIN)/python
	$(BIN)/pip install --quiet uv

# Reinstall only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The layering of DESIGN.md is a contract (pyproject [tool.importlinter]): CI fails on a
# violation before any test runs.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# DB=postgres: the production shape (Postgres for the ledger and Dagster's storage,
# dagster-webserver and dagster-daemon as separate processes).
DB ?= sqlite
demo: $(STAMP)
	$(BIN)/ml-connector demo --db $(DB)

bench: $(STAMP)
	$(BIN)/python -m bench.run_all $(BENCH)

# 10,000 vendors and 100,000 tickets through the dagster CLI (about 20 minutes).
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale $(PARTS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .ml-connector .pytest_cache
