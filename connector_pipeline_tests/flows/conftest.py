"""Flow tests run on a SQLite ledger only: the flows hand every statement to
StagingStore, whose behaviour on both dialects the staging tests prove, so a second
dialect here would cost a scratch Postgres database per test and prove nothing new."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connector_pipeline.staging import StagingStore


@pytest.fixture
def store(sqlite_url: str) -> Iterator[StagingStore]:
    s = StagingStore.open(sqlite_url)
    try:
        yield s
    finally:
        s.dispose()
