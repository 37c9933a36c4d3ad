"""What the whole ledger holds, for `ml-connector status`: rows per table and the latest
failures still recorded on links and inbox rows."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import literal, select

from connector_pipeline.staging.base import LedgerBase
from connector_pipeline.staging.rows import LedgerError
from connector_pipeline.staging.schema import (
    intacct_hints,
    intacct_vendors,
    quarantine,
    sync_cursors,
    ticket_record_links,
    vendor_org_links,
    webhook_inbox,
    zendesk_tickets,
)


class LedgerOverview(LedgerBase):
    """Counts and recent errors across the ledger's tables."""

    def table_counts(self) -> dict[str, int]:
        """Rows per ledger table."""
        tables = (
            intacct_vendors,
            zendesk_tickets,
            vendor_org_links,
            ticket_record_links,
            webhook_inbox,
            sync_cursors,
            quarantine,
            intacct_hints,
        )
        return {t.name: self.count(t) for t in tables}

    def recent_errors(self, limit: int) -> list[LedgerError]:
        """The latest failures still recorded on links and inbox rows, newest first."""
        queries = [
            select(
                literal(vendor_org_links.name).label("table"),
                vendor_org_links.c.external_id.label("key"),
                vendor_org_links.c.last_error.label("error"),
                vendor_org_links.c.written_at.label("at"),
            ).where(vendor_org_links.c.last_error.is_not(None)),
            select(
                literal(ticket_record_links.name).label("table"),
                ticket_record_links.c.ticket_id.label("key"),
                ticket_record_links.c.last_error.label("error"),
                ticket_record_links.c.written_at.label("at"),
            ).where(ticket_record_links.c.last_error.is_not(None)),
            select(
                literal(webhook_inbox.name).label("table"),
                webhook_inbox.c.id.label("key"),
                webhook_inbox.c.error.label("error"),
                webhook_inbox.c.received_at.label("at"),
            ).where(webhook_inbox.c.error.is_not(None)),
        ]
        found: list[LedgerError] = []
        with self._read(None) as c:
            for query in queries:
                order = query.selected_columns.at
                for r in c.execute(query.order_by(order.desc()).limit(limit)):
                    found.append(LedgerError(r.table, str(r.key), str(r.error), r.at))
        oldest = datetime.min.replace(tzinfo=UTC)
        found.sort(key=lambda e: e.at or oldest, reverse=True)
        return found[:limit]
