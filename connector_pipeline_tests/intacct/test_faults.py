"""Faults, retries and limits: transient failures are absorbed, lost write answers are
never resent blindly, and a read or write under 10 % faults still comes out exact."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from connector_pipeline import settings
from connector_pipeline.flows.ticket_records import ExactlyOnceWriter
from connector_pipeline.intacct import (
    IntacctClient,
    IntacctRateLimited,
    IntacctTransientError,
    IntacctWriteOutcomeUnknown,
)
from connector_pipeline.outcome import WriteOutcome
from connector_pipeline.sync.tickets import PlannedRecord, TicketRecordMapping
from connector_pipeline_tests.intacct.conftest import RunningSandbox, SandboxFactory

TICKETS = settings.INTACCT_TICKET_OBJECT
ALL_FAULTS = (
    "http_500",
    "http_502",
    "http_503",
    "http_524",
    "reset",
    "html",
    "malformed_xml",
    "invalid_session",
    "rate_limit",
    "try_again_later",
)
FIELDS = ["RECORDNO", "VENDORID", "NAME", "WHENMODIFIED"]


def _tickets(count: int, vendor: int) -> list[dict[str, object]]:
    return [
        {"name": f"ZD-{n}", "ticket_id": n, "subject": f"Subject {n}", "RVENDOR": vendor}
        for n in range(1, count + 1)
    ]


def _create_once(
    client: IntacctClient, records: list[dict[str, object]]
) -> dict[int, WriteOutcome]:
    """The production exactly-once path (the ticket-record flow's writer) on these
    records: look up, create the rest, look up again what a lost answer left unknown."""
    writer = ExactlyOnceWriter(client, TicketRecordMapping())
    writes = [
        PlannedRecord(int(str(r["ticket_id"])), r, "hash", "V1", None, "staged") for r in records
    ]
    creates, updates = writer.split(writes, writer.existing([w.ticket_id for w in writes]))
    assert updates == []
    outcomes: dict[int, WriteOutcome] = {}

    def keep(chunk: list[tuple[PlannedRecord, WriteOutcome]]) -> None:
        outcomes.update({w.ticket_id: o for w, o in chunk})

    writer.write(creates, [], keep, keep)
    return outcomes


def _open(client: object) -> None:
    """Open the session so scripted faults hit the calls under test, not the login."""
    client.query("VENDOR", ["RECORDNO"], page_size=1)  # type: ignore[attr-defined]


def test_read_of_5000_vendors_under_10_percent_faults(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(
        seed_vendors=5_000, fault_rate=0.10, fault_kinds=ALL_FAULTS, fault_seed=3
    )
    with sandbox.client(max_attempts=8) as client:
        seen = [
            r["RECORDNO"]
            for page in client.iter_changed("VENDOR", FIELDS, page_size=250)
            for r in page
        ]
    truth = sorted(v["RECORDNO"] for v in sandbox.get("records/VENDOR"))
    assert sorted(seen) == truth and len(seen) == 5_000
    injected = sandbox.get("stats")["faults_injected"]
    assert sum(injected.values()) >= 2, injected


def test_write_of_1000_records_under_10_percent_faults_has_no_duplicates(
    start_sandbox: SandboxFactory,
) -> None:
    sandbox = start_sandbox(seed_vendors=5, fault_rate=0.10, fault_kinds=ALL_FAULTS, fault_seed=11)
    vendor = sandbox.get("records/VENDOR")[0]["RECORDNO"]
    records = _tickets(1_000, vendor)
    with sandbox.client(max_attempts=8) as client:
        results = _create_once(client, records)
    assert len(results) == 1_000 and all(r.ok and r.id for r in results.values())
    stored = sandbox.get(f"records/{TICKETS}")
    counts = Counter(t["ticket_id"] for t in stored)
    assert len(stored) == 1_000 and set(counts.values()) == {1}
    assert {r.id for r in results.values()} == {str(t["id"]) for t in stored}
    # ~15 requests at 10 %: the fixed seed makes at least one of them fail.
    assert sum(sandbox.get("stats")["faults_injected"].values()) >= 1


def test_lost_write_answer_is_resolved_by_lookup_not_resend(gateway: RunningSandbox) -> None:
    vendor = gateway.get("records/VENDOR")[0]["RECORDNO"]
    with gateway.client() as client:
        _open(client)
        # query_in finds nothing; the first create is done but its answer is cut short.
        gateway.post("faults", {"script": ["ok", "malformed_xml"]})
        results = _create_once(client, _tickets(150, vendor))
        assert len(results) == 150 and all(r.ok for r in results.values())
        assert client.calls_by_function()["create"] == 2  # the lost chunk is not resent
    stats = gateway.get("stats")
    assert stats["writes"][TICKETS] == 150
    assert len(gateway.get(f"records/{TICKETS}")) == 150
    # Running it again creates nothing: every record is found by its ticket id.
    with gateway.client() as client:
        writer = ExactlyOnceWriter(client, TicketRecordMapping())
        again = writer.existing(list(range(1, 151)))
        assert "create" not in client.calls_by_function()
    assert again == {t: o.id for t, o in results.items()}


@pytest.mark.parametrize(
    "fault", ["http_524", "http_500", "http_502", "reset", "html", "malformed_xml"]
)
def test_write_with_unknown_outcome_is_raised_not_retried(
    gateway: RunningSandbox, fault: str
) -> None:
    vendor = gateway.get("records/VENDOR")[0]["RECORDNO"]
    with gateway.client() as client:
        _open(client)
        gateway.post("faults", {"script": [fault]})
        with pytest.raises(IntacctWriteOutcomeUnknown) as info:
            client.create(TICKETS, _tickets(3, vendor))
        assert info.value.retryable
        assert client.calls_by_function()["create"] == 1


@pytest.mark.parametrize("fault", ["http_503", "rate_limit", "invalid_session", "try_again_later"])
def test_write_refused_before_processing_is_retried(gateway: RunningSandbox, fault: str) -> None:
    vendor = gateway.get("records/VENDOR")[0]["RECORDNO"]
    with gateway.client() as client:
        _open(client)
        gateway.post("faults", {"script": [fault]})
        results = client.create(TICKETS, _tickets(3, vendor))
        assert all(r.ok for r in results)
        assert client.calls_by_function()["create"] == 2
    assert len(gateway.get(f"records/{TICKETS}")) == 3


def test_reads_retry_every_transient_fault(gateway: RunningSandbox) -> None:
    script = [
        "http_500",
        "html",
        "reset",
        "malformed_xml",
        "http_502",
        "http_524",
        "rate_limit",
        "try_again_later",
    ]
    with gateway.client(max_attempts=len(script) + 1) as client:
        _open(client)
        gateway.post("faults", {"script": script})
        page = client.query("VENDOR", FIELDS, page_size=5)
        assert len(page.records) == 5
        assert client.calls_by_function()["query"] == 1 + len(script) + 1


def test_transient_errors_surface_typed_when_attempts_run_out(gateway: RunningSandbox) -> None:
    with gateway.client(max_attempts=3) as client:
        _open(client)
        gateway.post("faults", {"script": ["http_503"] * 5})
        with pytest.raises(IntacctTransientError) as info:
            client.query("VENDOR", FIELDS)
        assert info.value.http_status == 503 and info.value.retryable
        assert client.calls_by_function()["query"] == 1 + 3


def test_retry_after_beyond_the_budget_raises_rate_limited_at_once(
    start_sandbox: SandboxFactory,
) -> None:
    sandbox = start_sandbox(seed_vendors=2, retry_after_s=30)
    with sandbox.client(retry_budget_s=2) as client:
        _open(client)
        sandbox.post("faults", {"script": ["rate_limit"]})
        started = time.monotonic()
        with pytest.raises(IntacctRateLimited) as info:
            client.query("VENDOR", FIELDS)
        assert time.monotonic() - started < 10  # it did not sleep 30 s
        assert info.value.retry_after == 30
        assert info.value.errors[0].errorno == "GW-0010"


def test_retry_after_is_honoured(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_vendors=2, retry_after_s=1)
    with sandbox.client() as client:
        _open(client)
        sandbox.post("faults", {"script": ["rate_limit"]})
        started = time.monotonic()
        assert len(client.query("VENDOR", FIELDS).records) == 2
        assert time.monotonic() - started >= 0.9


def test_concurrent_requests_get_429_and_both_clients_finish(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_vendors=20, latency_ms=30)
    errors: list[BaseException] = []
    counts: list[int] = []

    def work() -> None:
        try:
            with sandbox.client(retry_budget_s=60, max_attempts=30) as client:
                counts.extend(len(client.query("VENDOR", FIELDS).records) for _ in range(8))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and counts == [20] * 24
    assert sandbox.get("stats")["rejected_concurrent"] > 0


def test_request_rate_limit(start_sandbox: SandboxFactory) -> None:
    sandbox = start_sandbox(seed_vendors=2, requests_per_second=4)
    with sandbox.client(retry_budget_s=60, max_attempts=20) as client:
        for _ in range(8):
            assert len(client.query("VENDOR", FIELDS).records) == 2
    assert sandbox.get("stats")["rejected_rate"] > 0


def test_timeouts_are_transient_for_reads_and_unknown_for_writes(
    start_sandbox: SandboxFactory,
) -> None:
    sandbox = start_sandbox(seed_vendors=2)
    vendor = sandbox.get("records/VENDOR")[0]["RECORDNO"]
    with sandbox.client(timeout_s=0.5, max_attempts=2) as client:
        _open(client)
        sandbox.post("config", {"latency_ms": 1_500})
        with pytest.raises(IntacctWriteOutcomeUnknown, match="ReadTimeout"):
            client.create(TICKETS, _tickets(1, vendor))
        assert client.calls_by_function()["create"] == 1
        with pytest.raises(IntacctTransientError) as info:
            client.query("VENDOR", FIELDS)
        assert not isinstance(info.value, IntacctWriteOutcomeUnknown)
        assert client.calls_by_function()["query"] == 1 + 2
    sandbox.post("config", {"latency_ms": 0})
    # The gateway finished the write after the client gave up: exactly why it is not resent.
    deadline = time.monotonic() + 10
    while not sandbox.get(f"records/{TICKETS}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(sandbox.get(f"records/{TICKETS}")) == 1
