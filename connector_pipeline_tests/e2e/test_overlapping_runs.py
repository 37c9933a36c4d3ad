"""Runs overlap as the daemon runs them: each holds only the pool slot its step needs, so
a ticket poll can stage a newer version of a ticket while a load is still writing the
older one to Intacct. The newer version must still reach Intacct (issue: lost update)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connector_pipeline.defs.tickets import intacct_ticket_records, zendesk_tickets
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.intacct import IntacctClient
from connector_pipeline.sandbox.scenario import seed_tickets, seed_vendors
from connector_pipeline_tests.e2e.harness import TICKET_OBJECT, Pipeline, pipeline
from connector_pipeline_tests.e2e.test_full_sync import metadata


def _live_poll(p: Pipeline) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    return metadata(p.materialize([zendesk_tickets], partition_key=today), "zendesk_tickets")


def _record_subject(p: Pipeline, ticket_id: int) -> str:
    [record] = [r for r in p.intacct_records(TICKET_OBJECT) if int(r["ticket_id"]) == ticket_id]
    return str(record["subject"])


def test_a_version_staged_while_a_load_writes_the_older_one_is_written_next(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pipeline(ledger_url) as p:
        seed_vendors(p.sandboxes, vendors=10)
        p.materialize([intacct_vendors, zendesk_organizations])
        seed_tickets(p.sandboxes, tickets=20, days=1)
        _live_poll(p)
        ticket_id = next(
            t["ticket_id"] for t in p.store.tickets() if t["organization_id"] is not None
        )

        # Run A creates the records; Intacct has written them, but before its answer
        # reaches run A the ticket changes in Zendesk and run B's poll stages the change.
        original_create = IntacctClient.create
        overlapped: list[dict[str, Any]] = []

        def create_with_a_slow_answer(self: IntacctClient, *args: Any, **kwargs: Any) -> Any:
            results = original_create(self, *args, **kwargs)
            if not overlapped:
                with p.sandboxes.zendesk() as z:
                    z.patch(
                        f"/_sandbox/tickets/{ticket_id}", json={"subject": "Changed meanwhile"}
                    ).raise_for_status()
                overlapped.append(_live_poll(p))
            return results

        monkeypatch.setattr(IntacctClient, "create", create_with_a_slow_answer)
        first = metadata(p.materialize([intacct_ticket_records]), "intacct_ticket_records")
        monkeypatch.undo()
        assert overlapped and overlapped[0]["changed"] == 1
        assert first["created"] >= 1 and first["failed"] == 0
        assert _record_subject(p, ticket_id) != "Changed meanwhile"

        # The next load, with no further change anywhere, writes the version run B staged.
        second = metadata(p.materialize([intacct_ticket_records]), "intacct_ticket_records")
        assert (second["created"], second["updated"]) == (0, 1)
        assert _record_subject(p, ticket_id) == "Changed meanwhile"

        # And then nothing is owed any more.
        third = metadata(p.materialize([intacct_ticket_records]), "intacct_ticket_records")
        assert (third["created"], third["updated"], third["api_calls"]) == (0, 0, 0)
