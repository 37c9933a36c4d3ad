"""When Intacct deliveries call for a vendor read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connector_pipeline.sync.hints import decide_hint_run

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_nothing_waiting_requests_nothing() -> None:
    decision = decide_hint_run(pending=0, newest=None, read_started=None, active_run_starts=[])
    assert decision.run_key is None


def test_waiting_hints_and_no_read_request_one_keyed_by_the_newest() -> None:
    decision = decide_hint_run(pending=3, newest=at(5), read_started=at(1), active_run_starts=[])
    assert decision.run_key == f"intacct-hints-{at(5).isoformat()}"


def test_a_queued_or_not_yet_reading_run_covers_everything() -> None:
    cases: list[tuple[list[datetime | None], datetime | None]] = [
        ([None], at(0)),
        ([at(10)], at(2)),
        ([at(10)], None),
    ]
    for starts, read_started in cases:
        decision = decide_hint_run(
            pending=5, newest=at(20), read_started=read_started, active_run_starts=starts
        )
        assert decision.run_key is None, decision


def test_hints_during_a_read_ask_for_exactly_one_more() -> None:
    during = [
        decide_hint_run(
            pending=n, newest=at(20 + n), read_started=at(11), active_run_starts=[at(10)]
        )
        for n in range(1, 50)
    ]
    assert {d.run_key for d in during} == {f"intacct-hints-after-{at(11).isoformat()}"}
    before = decide_hint_run(
        pending=2, newest=at(9), read_started=at(11), active_run_starts=[at(10)]
    )
    assert before.run_key is None
    queued_behind = decide_hint_run(
        pending=2, newest=at(30), read_started=at(11), active_run_starts=[at(10), None]
    )
    assert queued_behind.run_key is None
