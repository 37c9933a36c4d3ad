"""Intacct outbound webhooks end to end: a verified delivery wakes the vendor read and the
organization follows; a burst costs at most two reads; a forged delivery stores nothing;
polling still covers a change whose delivery never came."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import httpx
import pytest
from sqlalchemy import text

from connector_pipeline import settings
from connector_pipeline.defs.automation import vendor_sync_job
from connector_pipeline.defs.intacct_hints import intacct_hint_sensor
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.intacct import IntacctClient
from connector_pipeline.intacct.webhooks import TriggerConfig
from connector_pipeline.sandbox.scenario import seed_vendors
from connector_pipeline.staging.hints import IntacctHints
from connector_pipeline.webhook.app import create_app as create_receiver
from connector_pipeline_tests.e2e.harness import Pipeline, pipeline
from connector_pipeline_tests.e2e.test_full_sync import metadata
from connector_pipeline_tests.support import ServerHandle, serve_asgi
from connector_pipeline_tests.webhook.deliveries import (
    INTACCT_CLIENT_ID,
    INTACCT_CLIENT_SECRET,
    intacct_trigger_headers,
)

TRIGGER = TriggerConfig(client_id=INTACCT_CLIENT_ID, key=INTACCT_CLIENT_SECRET)


def evaluate(p: Pipeline) -> dg.RunRequest | dg.SkipReason:
    with dg.build_sensor_context(
        instance=p.instance, resources={"staging": p.resources()["staging"]}
    ) as context:
        result = intacct_hint_sensor(context)
    assert isinstance(result, dg.RunRequest | dg.SkipReason)
    return result


def run_vendor_sync(p: Pipeline, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    job = dg.Definitions(
        assets=[intacct_vendors, zendesk_organizations],
        jobs=[vendor_sync_job],
        resources=p.resources(),
    ).resolve_job_def("vendor_sync")
    result = job.execute_in_process(instance=p.instance, tags=request.tags)
    assert result.success
    return result


def deliver(receiver: ServerHandle, key: str, **options: Any) -> httpx.Response:
    return httpx.post(
        receiver.url + settings.INTACCT_WEBHOOK_PATH,
        content=b'{"object":"VENDOR"}',
        headers=intacct_trigger_headers(key=key, **options),
    )


def modify_vendor(p: Pipeline, vendor_id: str) -> None:
    with p.sandboxes.intacct() as i:
        i.post("/_sandbox/vendors/modify", json={"vendor_ids": [vendor_id]}).raise_for_status()


@pytest.fixture
def synced(sqlite_url: str) -> Iterator[tuple[Pipeline, ServerHandle]]:
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=20)
        p.materialize([intacct_vendors, zendesk_organizations])
        with serve_asgi(create_receiver(store=p.store, intacct_trigger=TRIGGER)) as receiver:
            yield p, receiver


def test_a_delivery_wakes_the_vendor_read_and_the_organization_follows(
    synced: tuple[Pipeline, ServerHandle],
) -> None:
    p, receiver = synced
    assert isinstance(evaluate(p), dg.SkipReason)
    vendor = p.intacct_records("VENDOR")[3]
    modify_vendor(p, vendor["VENDORID"])
    assert deliver(receiver, "idem-1").json() == {"status": "accepted"}
    assert deliver(receiver, "idem-1").json() == {"status": "duplicate"}  # Intacct's retry

    request = evaluate(p)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[settings.RUN_TAG_TRIGGER] == "intacct-webhook"
    result = run_vendor_sync(p, request)
    assert metadata(result, "intacct_vendors")["changed"] == 1
    assert metadata(result, "intacct_vendors")["intacct_deliveries_covered"] == 1
    assert metadata(result, "zendesk_organizations")["updated"] == 1
    assert isinstance(evaluate(p), dg.SkipReason)  # consumed


def test_a_forged_delivery_stores_nothing_and_wakes_nothing(
    synced: tuple[Pipeline, ServerHandle],
) -> None:
    p, receiver = synced
    forged = deliver(receiver, "idem-f", secret="a-forger-s-guess-of-the-client-secret")
    stale = deliver(receiver, "idem-s", issued_at=0)
    foreign = deliver(receiver, "idem-w", client_id="another.app.sage.com")
    assert [r.status_code for r in (forged, stale, foreign)] == [401, 401, 401]
    assert IntacctHints(p.store).pending().count == 0
    assert isinstance(evaluate(p), dg.SkipReason)


def test_a_burst_during_a_read_costs_exactly_one_more_read(
    synced: tuple[Pipeline, ServerHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    p, receiver = synced
    vendors = p.intacct_records("VENDOR")
    modify_vendor(p, vendors[0]["VENDORID"])
    for n in range(100):
        deliver(receiver, f"burst-a-{n}")
    first = evaluate(p)
    assert isinstance(first, dg.RunRequest)

    # As the first read begins, the burst goes on (and another vendor changes).
    original = IntacctClient.iter_changed
    during: list[dg.RunRequest | dg.SkipReason] = []

    def iter_changed_with_a_burst(self: IntacctClient, *args: Any, **kwargs: Any) -> Any:
        if not during:
            modify_vendor(p, vendors[1]["VENDORID"])
            for n in range(100):
                deliver(receiver, f"burst-b-{n}")
                if n % 25 == 0:
                    during.append(evaluate(p))
        yield from original(self, *args, **kwargs)

    monkeypatch.setattr(IntacctClient, "iter_changed", iter_changed_with_a_burst)
    result = run_vendor_sync(p, first)
    monkeypatch.undo()
    assert metadata(result, "intacct_vendors")["changed"] == 2
    assert metadata(result, "intacct_vendors")["intacct_deliveries_covered"] == 100
    keys = {r.run_key for r in during if isinstance(r, dg.RunRequest)}
    assert len(keys) == 1 and all(isinstance(r, dg.RunRequest) for r in during)

    # The one more read (the daemon launched it during the first) covers the rest.
    [key] = keys
    second = run_vendor_sync(p, dg.RunRequest(run_key=key))
    assert metadata(second, "intacct_vendors")["intacct_deliveries_covered"] == 100
    assert isinstance(evaluate(p), dg.SkipReason)


def test_polling_covers_a_change_whose_delivery_never_came(
    synced: tuple[Pipeline, ServerHandle],
) -> None:
    p, _ = synced
    vendor = p.intacct_records("VENDOR")[5]
    modify_vendor(p, vendor["VENDORID"])
    assert isinstance(evaluate(p), dg.SkipReason)  # no delivery: the sensor does nothing
    result = p.materialize([intacct_vendors, zendesk_organizations])  # the schedule's run
    assert metadata(result, "intacct_vendors")["changed"] == 1
    assert metadata(result, "zendesk_organizations")["updated"] == 1


def wait_until(predicate: Any, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_sandbox_delivers_a_vendor_edit_and_retries_while_the_receiver_is_down(
    sqlite_url: str,
) -> None:
    """Intacct's side too: the sandbox gateway posts a trigger delivery for a vendor edit;
    while the receiver cannot store it (503), Intacct's retry schedule delivers it later."""
    with pipeline(sqlite_url) as p:
        seed_vendors(p.sandboxes, vendors=10)
        p.materialize([intacct_vendors, zendesk_organizations])
        config = TriggerConfig(
            client_id=settings.INTACCT_SANDBOX_TRIGGER_CLIENT_ID,
            key=settings.INTACCT_SANDBOX_TRIGGER_CLIENT_SECRET,
        )
        with serve_asgi(create_receiver(store=p.store, intacct_trigger=config)) as receiver:
            with p.sandboxes.intacct() as i:
                i.post(
                    "/_sandbox/triggers",
                    json={
                        "url": receiver.url + settings.INTACCT_WEBHOOK_PATH,
                        "retry_delays_s": [0.3, 0.3, 0.3],
                    },
                ).raise_for_status()
            with p.store.engine.begin() as conn:
                conn.execute(text("ALTER TABLE intacct_hints RENAME TO intacct_hints_away"))
            vendor = p.intacct_records("VENDOR")[2]
            modify_vendor(p, vendor["VENDORID"])

            def attempts() -> list[Any]:
                with p.sandboxes.intacct() as i:
                    return list(i.get("/_sandbox/triggers/deliveries").json()["deliveries"])

            wait_until(lambda: attempts() and attempts()[0]["attempts"] >= 1)
            with p.store.engine.begin() as conn:
                conn.execute(text("ALTER TABLE intacct_hints_away RENAME TO intacct_hints"))
            wait_until(lambda: attempts()[0]["status"] == "delivered")
            [delivery] = attempts()
            assert delivery["log"][0]["status"] == 503 and delivery["log"][-1]["status"] == 200
        request = evaluate(p)
        assert isinstance(request, dg.RunRequest)
        result = run_vendor_sync(p, request)
        assert metadata(result, "zendesk_organizations")["updated"] == 1
