"""What the flows need of the outside world, and nothing more: small Protocols the real
clients satisfy and unit tests fake in memory."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from connector_pipeline.outcome import WriteOutcome
from connector_pipeline.zendesk import OrganizationExportPage, TicketExportPage


class Log(Protocol):
    """Where a flow reports what a user should see (Dagster's context.log in a run)."""

    def info(self, msg: str, *args: Any) -> Any: ...
    def warning(self, msg: str, *args: Any) -> Any: ...
    def error(self, msg: str, *args: Any) -> Any: ...


class CountsCalls(Protocol):
    @property
    def http_calls(self) -> int:
        """HTTP requests made so far (for the run's api_calls)."""
        ...


class HasOutcome(Protocol):
    """A client's per-record write result."""

    @property
    def outcome(self) -> WriteOutcome: ...


class VendorSource(CountsCalls, Protocol):
    """Intacct, as the vendor read needs it."""

    def iter_changed(
        self, object_name: str, fields: Sequence[str], after: tuple[datetime, int] | None = None
    ) -> Iterator[list[dict[str, Any]]]: ...


class RecordStore(CountsCalls, Protocol):
    """Intacct, as the ticket-record load needs it."""

    def query_in(
        self, object_name: str, field: str, values: Sequence[Any], fields: Sequence[str]
    ) -> list[dict[str, Any]]: ...

    def create(self, object_name: str, records: Sequence[Any]) -> Sequence[HasOutcome]: ...

    def update(self, object_name: str, records: Sequence[Any]) -> Sequence[HasOutcome]: ...


class OrganizationDirectory(CountsCalls, Protocol):
    """Zendesk, as the organization sync needs it."""

    def show_many_organizations(
        self, *, ids: Sequence[int] | None = None, external_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]: ...

    def count_organizations(self) -> int: ...

    def iter_organization_export(
        self, *, start_time: int = 0
    ) -> Iterator[OrganizationExportPage]: ...

    def create_many_organizations(self, organizations: Sequence[Any]) -> Sequence[HasOutcome]: ...

    def update_many_organizations(self, organizations: Sequence[Any]) -> Sequence[HasOutcome]: ...


class TicketFeed(CountsCalls, Protocol):
    """Zendesk, as the ticket poll needs it."""

    def iter_ticket_export(
        self,
        *,
        start_time: int | None = None,
        cursor: str | None = None,
        end_time: int | None = None,
    ) -> Iterator[TicketExportPage]: ...


class TicketLookup(CountsCalls, Protocol):
    """Zendesk, as the webhook drain needs it."""

    def show_many_tickets(self, ids: Sequence[int]) -> list[dict[str, Any]]: ...


class StandingSource(CountsCalls, Protocol):
    """Intacct, as the standing read needs it: several incremental reads at once."""

    def iter_changed_together(
        self, requests: Mapping[str, tuple[Sequence[str], tuple[datetime, int] | None]]
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]: ...


class OrganizationUpdater(CountsCalls, Protocol):
    """Zendesk, as the standing publish needs it."""

    def update_many_organizations(self, organizations: Sequence[Any]) -> Sequence[HasOutcome]: ...


class OrganizationFieldAdmin(CountsCalls, Protocol):
    """Zendesk, as `ml-connector setup zendesk` needs it."""

    def list_organization_fields(self) -> list[dict[str, Any]]: ...

    def create_organization_field(self, field: Mapping[str, Any]) -> dict[str, Any]: ...
