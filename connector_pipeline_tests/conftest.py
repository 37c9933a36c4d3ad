"""Ledger fixtures: every ledger test runs on SQLite and on Postgres.

Without CONNECTOR_TEST_POSTGRES_URL the Postgres cases skip with a reason; with CI=true
they fail instead, so CI can never pass without exercising Postgres.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector_pipeline.staging import StagingStore
from connector_pipeline.staging.scratch import scratch_postgres_database
from connector_pipeline_tests.support import in_ci

POSTGRES_ENV = "CONNECTOR_TEST_POSTGRES_URL"


def postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        message = f"{POSTGRES_ENV} is not set: Postgres ledger tests need a server"
        if in_ci():
            pytest.fail(message + " (CI=true: Postgres tests must run)")
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty database on the test server, dropped afterwards."""
    with scratch_postgres_database(postgres_base_url(), prefix="mlc_test") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'staging.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty ledger database, once per dialect."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def store(ledger_url: str) -> Iterator[StagingStore]:
    s = StagingStore.open(ledger_url)
    try:
        yield s
    finally:
        s.dispose()
