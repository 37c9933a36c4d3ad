"""Vendor edit in Intacct to updated organization in Zendesk, through Intacct's outbound
webhooks, as `make demo` deploys it: the Intacct sandbox posts a Platform Trigger delivery
to the webhook receiver, `intacct_hint_sensor` (run by `dagster dev`'s daemon) launches
`vendor_sync`, and the organization changes in the Zendesk sandbox.

Measured: latency of single edits (p50 / p99 / max; goal p50 <= 10 s, p99 <= 30 s), and a
burst of 1,000 deliveries (goal: at most 2 vendor runs, every organization right after).
The demo runs on ports of its own, with live ticket traffic off, in a scratch home.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import main
from connector_pipeline import settings
from connector_pipeline.servers import stop_process

EDITS = int(os.environ.get("INTACCT_WEBHOOK_BENCH_EDITS", "20"))
BURST = int(os.environ.get("INTACCT_WEBHOOK_BENCH_BURST", "1000"))
VENDORS = 300
PORTS = {"port": 3310, "intacct": 8311, "zendesk": 8312, "webhook": 8313}
REPO = Path(__file__).resolve().parent.parent
DEMO_START_TIMEOUT_S = 300
LANDING_TIMEOUT_S = 120


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if value := predicate():
                return value
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}")


@contextmanager
def demo(home: Path) -> Iterator[None]:
    env = {
        **os.environ,
        settings.ENV_ML_CONNECTOR_HOME: str(home),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ml-connector"),
            "demo",
            "--port",
            str(PORTS["port"]),
            "--intacct-port",
            str(PORTS["intacct"]),
            "--zendesk-port",
            str(PORTS["zendesk"]),
            "--webhook-port",
            str(PORTS["webhook"]),
            "--vendors",
            str(VENDORS),
            "--tickets",
            "100",
            "--traffic-interval",
            "0",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        stop_process(proc, 60, group=True)


def graphql(query: str) -> dict[str, Any]:
    response = httpx.post(
        f"http://127.0.0.1:{PORTS['port']}/graphql", json={"query": query}, timeout=30
    )
    return dict(response.raise_for_status().json()["data"])


def vendor_runs() -> list[dict[str, Any]]:
    data = graphql(
        '{ runsOrError(filter: {pipelineName: "vendor_sync"}) { ... on Runs { results {'
        " runId status tags { key value } startTime endTime } } } }"
    )
    return list(data["runsOrError"]["results"])


def organizations() -> dict[str, dict[str, Any]]:
    url = f"http://127.0.0.1:{PORTS['zendesk']}/_sandbox/organizations"
    return {
        str(o["external_id"]).lower(): o
        for o in httpx.get(url, timeout=30).raise_for_status().json()
        if o.get("external_id")
    }


def intacct(path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"http://127.0.0.1:{PORTS['intacct']}/_sandbox{path}"
    if body is None:
        return httpx.get(url, timeout=30).raise_for_status().json()
    return httpx.post(url, json=body, timeout=60).raise_for_status().json()


def total_due_shown(org: dict[str, Any], total: str) -> bool:
    # The default mapping writes the vendor's TOTALDUE into the organization's notes.
    return total in str(org.get("notes") or "")


def run() -> dict[str, Any]:
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="bench-intacct-webhooks-") as tmp, demo(Path(tmp)):
        wait_for(
            lambda: any(r["status"] == "SUCCESS" for r in vendor_runs()),
            DEMO_START_TIMEOUT_S,
            "the demo's first vendor sync",
        )
        vendors = [v["VENDORID"] for v in intacct("/records/VENDOR") if v["STATUS"] == "active"]
        wait_for(lambda: len(organizations()) >= len(vendors), 120, "every organization")

        latencies = []
        for _ in range(EDITS):
            vendor = rng.choice(vendors)
            started = time.monotonic()
            intacct("/vendors/modify", {"vendor_ids": [vendor]})
            [record] = [v for v in intacct("/records/VENDOR") if v["VENDORID"] == vendor]
            total = str(record["TOTALDUE"])
            wait_for(
                lambda v=vendor, t=total: total_due_shown(organizations()[v.lower()], t),
                LANDING_TIMEOUT_S,
                f"vendor {vendor} in Zendesk",
            )
            latencies.append(time.monotonic() - started)
            time.sleep(rng.uniform(1, 4))

        # A burst: every vendor edited over and over, one delivery per edit.
        runs_before = {r["runId"] for r in vendor_runs()}
        burst_started = time.monotonic()
        edits = 0
        while edits < BURST:
            count = min(len(vendors), BURST - edits)
            intacct("/vendors/modify", {"count": count})
            edits += count
        wait_for(lambda: intacct("/triggers/deliveries")["idle"], LANDING_TIMEOUT_S, "deliveries")
        final = {v["VENDORID"].lower(): str(v["TOTALDUE"]) for v in intacct("/records/VENDOR")}

        def all_landed() -> bool:
            orgs = organizations()
            return all(total_due_shown(orgs[v], t) for v, t in final.items() if v in orgs)

        wait_for(all_landed, LANDING_TIMEOUT_S * 2, "the burst in Zendesk")
        burst_s = time.monotonic() - burst_started
        time.sleep(settings.INTACCT_HINT_SENSOR_INTERVAL_S * 5)  # any late run would show
        new_runs = [r for r in vendor_runs() if r["runId"] not in runs_before]
        deliveries = intacct("/triggers/deliveries")["stats"]

    ordered = sorted(latencies)
    return {
        "edits": EDITS,
        "latency_p50_s": round(statistics.median(ordered), 2),
        "latency_p99_s": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "latency_max_s": round(ordered[-1], 2),
        "latency_min_s": round(ordered[0], 2),
        "goal": "p50 <= 10 s, p99 <= 30 s; a burst of 1,000 deliveries: <= 2 vendor runs",
        "burst_deliveries": BURST,
        "burst_vendor_runs": len(new_runs),
        "burst_runs_by_trigger": sorted(
            next((t["value"] for t in r["tags"] if t["key"] == settings.RUN_TAG_TRIGGER), "")
            for r in new_runs
        ),
        "burst_until_all_in_zendesk_s": round(burst_s, 1),
        "trigger_delivery_stats": deliveries,
        "setup": "make demo shape: dagster dev (daemon + sensor), SQLite ledger, "
        f"{VENDORS} vendors, Intacct sandbox posting outbound webhooks to the receiver",
    }


if __name__ == "__main__":
    main("intacct_webhook_latency", run)
