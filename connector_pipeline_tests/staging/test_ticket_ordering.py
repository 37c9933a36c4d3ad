"""Latest wins whatever order tickets arrive in and however they are chunked."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_pipeline import settings as connector_settings
from connector_pipeline.staging import StagingStore
from connector_pipeline_tests.staging.factories import ticket_row

# Each example uses ticket ids of its own, so examples can share one ledger.
_ids = itertools.count(1_000)

arrivals = st.lists(
    st.tuples(st.integers(0, 3), st.integers(1, 6), st.sampled_from(["a", "b"])),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(arrivals=arrivals, chunk=st.integers(1, 8))
def test_latest_version_wins_in_any_order(
    store: StagingStore, arrivals: list[tuple[int, int, str]], chunk: int
) -> None:
    base = next(_ids) * 10
    rows = [
        ticket_row(base + slot, version=version, subject=f"subject {variant}")
        for slot, version, variant in arrivals
    ]
    saved = connector_settings.UPSERT_CHUNK_ROWS
    connector_settings.UPSERT_CHUNK_ROWS = chunk
    try:
        counts = store.upsert_tickets(rows)
    finally:
        connector_settings.UPSERT_CHUNK_ROWS = saved

    expected: dict[int, tuple[int, str]] = {}
    for r in rows:  # the last row given among those with the highest version
        have = expected.get(r["ticket_id"])
        if have is None or r["version"] >= have[0]:
            expected[r["ticket_id"]] = (r["version"], r["raw"]["subject"])
    held = {
        t["ticket_id"]: (t["version"], t["raw"]["subject"]) for t in store.tickets(list(expected))
    }
    assert held == expected
    assert counts.new == len(expected)
