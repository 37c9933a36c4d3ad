"""The incremental organization export and the organization count, client against the
sandbox: pages end on a complete second, `end_time` leads to the next page, deleted
organizations are gone, and every page draws on the 10-per-minute export budget."""

from __future__ import annotations

from connector_pipeline_tests.zendesk.conftest import RunningSandbox


def test_the_export_pages_by_whole_seconds_and_counts_against_the_export_budget(
    zendesk: RunningSandbox,
) -> None:
    state = zendesk.sandbox.state
    now = [1_000.0]
    state.clock = lambda: now[0]
    for second, names in ((1_000, "abc"), (1_001, "de"), (1_002, "fg")):
        now[0] = float(second)
        for name in names:
            state.create_organization({"name": f"Org {name}", "external_id": f"X-{name}"})
    gone = state.organization_list()[-1]["id"]
    state.delete_organization(gone)
    now[0] = 2_000.0
    client = zendesk.client()
    assert client.count_organizations() == 6

    pages = list(client.iter_organization_export(start_time=0, per_page=2))
    # Three organizations share second 1000: the first page holds them all.
    assert [[o["external_id"] for o in p.organizations] for p in pages] == [
        ["X-a", "X-b", "X-c"],
        ["X-d", "X-e"],
        ["X-f"],
    ]
    assert [(p.end_time, p.end_of_stream) for p in pages] == [
        (1_001, False),
        (1_002, False),
        (1_003, True),
    ]
    later = list(client.iter_organization_export(start_time=1_002))
    assert [o["external_id"] for p in later for o in p.organizations] == ["X-f"]
    stats = state.stats()
    assert stats["incremental_requests"] == 4


def test_the_export_leaves_out_the_last_minute(zendesk: RunningSandbox) -> None:
    state = zendesk.sandbox.state
    state.config.export_lag_s = 60.0
    now = [5_000.0]
    state.clock = lambda: now[0]
    state.create_organization({"name": "Fresh", "external_id": "X-fresh"})
    client = zendesk.client()
    assert [o for p in client.iter_organization_export() for o in p.organizations] == []
    now[0] += 61
    found = [o["external_id"] for p in client.iter_organization_export() for o in p.organizations]
    assert found == ["X-fresh"]
