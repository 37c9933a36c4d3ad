"""Dagster resources: thin `ConfigurableResource` wrappers that build the lower layers."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from connector_pipeline import settings
from connector_pipeline.staging import StagingStore


class StagingResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The ledger. `database_url` empty means `STAGING_DATABASE_URL` or the SQLite default."""

    database_url: str = ""

    _store: StagingStore | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._store = StagingStore.open(self.database_url or settings.staging_database_url())

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._store is not None:
            self._store.dispose()
            self._store = None

    @property
    def store(self) -> StagingStore:
        if self._store is None:
            self._store = StagingStore.open(self.database_url or settings.staging_database_url())
        return self._store
