"""`make bench-scale`: the connector at account scale, every run through the `dagster` CLI
as a user runs it, API calls counted by the sandboxes (`/_sandbox/stats`):

- vendors: 10,000 Intacct vendors, 30 % of them with a hand-made Zendesk organization;
  first sync, a run where nothing changed, a run after 1 % changed (`dagster job execute
  -j vendor_sync`, asset checks included), each next to the least possible;
- backfill: 100,000 tickets over 365 days, `dagster asset materialize` of zendesk_tickets
  over the partition range (one run), then of intacct_ticket_records: calls next to
  ceil(T / 1,000) export pages and ceil(T / 100) Intacct writes, wall time next to the
  10-per-minute export bound, peak RSS of the run's process tree;
- webhook_burst: 10,000 signed deliveries through the receiver, then the run the inbox
  sensor asks for, until every ticket is in Intacct;
- per_record: the strategy typical integrations use (one `create_or_update` per vendor,
  one Intacct `create` per ticket), timed on a sample and extrapolated.

Zendesk at 700 requests/minute and 10/minute on incremental exports, Intacct one request
at a time, 80 ms latency per call on both. Parts: `python -m bench.scale vendors backfill
per_record` (default all); each writes `bench/results/scale_<part>.json`. The backfill
alone takes about 12 minutes (100 export pages at 10 a minute), by design.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import webhook_throughput as wt
from bench.common import record
from connector_pipeline import settings
from connector_pipeline.intacct import IntacctClient
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig
from connector_pipeline.sandbox.scenario import (
    RunningSandboxes,
    run_sandboxes,
    seed_tickets,
    seed_vendors,
)
from connector_pipeline.sandbox.zendesk import ZendeskSandboxConfig
from connector_pipeline.staging import StagingStore
from connector_pipeline.zendesk import ZendeskClient
from connector_pipeline.zendesk.webhooks import (
    INVOCATION_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

VENDORS = int(os.environ.get("SCALE_VENDORS", "10000"))
PREEXISTING = 0.3
TICKETS = int(os.environ.get("SCALE_TICKETS", "100000"))
DAYS = 365
LATENCY_MS = 80.0
SAMPLE = 200
BURST = int(os.environ.get("SCALE_BURST", "10000"))
REPO = Path(__file__).resolve().parent.parent
SYSTEM_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
MODULE = "connector_pipeline.definitions"


def _configs() -> tuple[IntacctSandboxConfig, ZendeskSandboxConfig]:
    intacct = IntacctSandboxConfig(latency_ms=LATENCY_MS)
    zendesk = ZendeskSandboxConfig.for_plan("enterprise", latency_ms=LATENCY_MS)
    return intacct, zendesk


class Cli:
    """The `dagster` command against these sandboxes, with its own instance folder and
    ledger, measured by bench.measure (wall time, peak RSS of the process tree)."""

    def __init__(self, sandboxes: RunningSandboxes, tmp: Path, **extra_env: str) -> None:
        self.sandboxes = sandboxes
        self.home = tmp / "dagster_home"
        self.home.mkdir()
        system = {n: os.environ[n] for n in SYSTEM_ENV if n in os.environ}
        self.env = {
            **system,
            **sandboxes.env,
            settings.ENV_STAGING_DATABASE_URL: f"sqlite:///{tmp / 'staging.db'}",
            "DAGSTER_HOME": str(self.home),
            **extra_env,
        }

    def run(self, *args: str) -> dict[str, Any]:
        before = self.calls()
        dagster = str(Path(sys.executable).parent / "dagster")
        proc = subprocess.run(
            [sys.executable, "-m", "bench.measure", dagster, *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        measured = json.loads(proc.stderr.strip().splitlines()[-1])
        if measured["returncode"] != 0:
            raise RuntimeError(f"dagster {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
        after = self.calls()
        measured["intacct_calls"] = after["intacct"] - before["intacct"]
        measured["zendesk_calls"] = {
            k: v - before["zendesk"].get(k, 0)
            for k, v in after["zendesk"].items()
            if v - before["zendesk"].get(k, 0)
        }
        measured["intacct_functions"] = {
            k: v - before["functions"].get(k, 0)
            for k, v in after["functions"].items()
            if v - before["functions"].get(k, 0)
        }
        measured["api_calls"] = measured["intacct_calls"] + sum(measured["zendesk_calls"].values())
        return measured

    def calls(self) -> dict[str, Any]:
        with self.sandboxes.intacct() as i, self.sandboxes.zendesk() as z:
            intacct = i.get("/_sandbox/stats").raise_for_status().json()
            zendesk = z.get("/_sandbox/stats").raise_for_status().json()
        return {
            "intacct": int(intacct["requests"]),
            "functions": dict(intacct["functions"]),
            "zendesk": {k: int(v) for k, v in zendesk["requests"].items() if "/_sandbox" not in k},
        }


def _count(calls: dict[str, int], word: str) -> int:
    return sum(v for k, v in calls.items() if word in k)


def vendors() -> dict[str, Any]:
    intacct_config, zendesk_config = _configs()
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_sandboxes(intacct_config=intacct_config, zendesk_config=zendesk_config) as sandboxes,
    ):
        seed_vendors(sandboxes, vendors=VENDORS, preexisting_fraction=PREEXISTING)
        with sandboxes.zendesk() as z:
            preexisting = len(z.get("/_sandbox/organizations").json())
        # Hand-made organizations predate a first sync by more than the minute Zendesk's
        # incremental exports leave out.
        time.sleep(zendesk_config.export_lag_s + 1)
        cli = Cli(sandboxes, Path(tmp))
        job = ("job", "execute", "-m", MODULE, "-j", "vendor_sync")
        first = cli.run(*job)
        unchanged = cli.run(*job)
        with sandboxes.intacct() as i:
            i.post("/_sandbox/vendors/modify", json={"count": VENDORS // 100}).raise_for_status()
        changed = cli.run(*job)

    intacct_pages = math.ceil(VENDORS / settings.INTACCT_QUERY_MAX_PAGESIZE)
    creates, updates = VENDORS - preexisting, preexisting
    jobs = math.ceil(creates / 100) + math.ceil(updates / 100)
    # Least possible: a session, the user's time zone (readUserFormatting, decision 9) and
    # one query page per 2,000 vendors; every organization written 100 per bulk call; one
    # job-status read per 100 jobs; the pre-existing organizations found at 1,000 a page.
    first["least_possible"] = (
        2 + intacct_pages + jobs + math.ceil(jobs / 100) + math.ceil(preexisting / 1000)
    )
    # Nothing changed: session, time zone, one (empty) query page.
    unchanged["least_possible"] = 3
    changed["least_possible"] = 3 + 1 + 1  # + one update_many, one job-status read
    for run in (first, unchanged, changed):
        run["ratio_to_least"] = round(run["api_calls"] / run["least_possible"], 2)
    first["lookup_calls"] = {
        "show_many": _count(first["zendesk_calls"], "organizations/show_many"),
        "export_pages": _count(first["zendesk_calls"], "incremental/organizations"),
        "count": _count(first["zendesk_calls"], "organizations/count"),
    }
    return {
        "vendors": VENDORS,
        "preexisting_organizations": preexisting,
        "first_sync": first,
        "nothing_changed": unchanged,
        "one_percent_changed": changed,
    }


def backfill() -> dict[str, Any]:
    intacct_config, zendesk_config = _configs()
    today = datetime.now(UTC).date()
    first_day, last_day = today - timedelta(days=DAYS), today - timedelta(days=1)
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_sandboxes(intacct_config=intacct_config, zendesk_config=zendesk_config) as sandboxes,
    ):
        seed_vendors(sandboxes, vendors=1000)
        cli = Cli(sandboxes, Path(tmp), **{settings.ENV_TICKETS_START_DATE: first_day.isoformat()})
        organizations = cli.run("job", "execute", "-m", MODULE, "-j", "vendor_sync")
        seed_tickets(sandboxes, tickets=TICKETS, days=DAYS)
        # Zendesk's export leaves out the last minute; a backfill of past days is unaffected.
        export = cli.run(
            "asset",
            "materialize",
            "-m",
            MODULE,
            "--select",
            "zendesk_tickets",
            "--partition-range",
            f"{first_day.isoformat()}...{last_day.isoformat()}",
        )
        load = cli.run("asset", "materialize", "-m", MODULE, "--select", "intacct_ticket_records")
        with sandboxes.intacct() as i:
            records = len(i.get(f"/_sandbox/records/{settings.INTACCT_TICKET_OBJECT}").json())
    pages = math.ceil(TICKETS / settings.ZENDESK_EXPORT_PER_PAGE)
    export["least_possible"] = pages
    export["export_bound_s"] = round(
        (pages - 1) * 60 / settings.ZENDESK_INCREMENTAL_LIMIT_PER_MINUTE, 1
    )
    writes = math.ceil(records / settings.INTACCT_MAX_RECORDS_PER_WRITE)
    lookups = math.ceil(records / settings.INTACCT_MAX_IN_VALUES)
    # Least possible: a session, the time zone, the writes at 100 records each, one lookup
    # of existing records per 1,000 tickets (decision 4).
    load["least_possible"] = 2 + writes + lookups
    load["ratio_to_least"] = round(load["api_calls"] / load["least_possible"], 2)
    return {
        "tickets": TICKETS,
        "days": DAYS,
        "intacct_records": records,
        "organization_sync": {k: organizations[k] for k in ("api_calls", "wall_s")},
        "export": export,
        "load": load,
        "peak_rss_mib": max(export["peak_rss_mib"], load["peak_rss_mib"]),
    }


def per_record() -> dict[str, Any]:
    """One create_or_update per vendor and one Intacct create per ticket, on a sample of
    SAMPLE each at the same latency and limits, extrapolated to VENDORS and TICKETS."""
    intacct_config, zendesk_config = _configs()
    with run_sandboxes(intacct_config=intacct_config, zendesk_config=zendesk_config) as sandboxes:
        zendesk = ZendeskClient.from_env(sandboxes.env)
        started = time.perf_counter()
        for n in range(SAMPLE):
            zendesk.create_or_update_organization(
                {"name": f"Per-record vendor {n}", "external_id": f"PR{n:06d}"}
            )  # raises on failure
        vendor_s = (time.perf_counter() - started) / SAMPLE
        intacct = IntacctClient.from_env(sandboxes.env)
        started = time.perf_counter()
        for n in range(SAMPLE):
            record = {"name": f"ZD-{n}", "ticket_id": str(n), "subject": "s", "status": "open"}
            [written] = intacct.create(settings.INTACCT_TICKET_OBJECT, [record])
            assert written.outcome.ok, written.outcome.message
        ticket_s = (time.perf_counter() - started) / SAMPLE
    plan_limit = settings.ZENDESK_PLAN_LIMITS["enterprise"]
    vendor_wall = max(VENDORS * vendor_s, VENDORS * 60 / plan_limit)
    return {
        "sample": SAMPLE,
        "vendor_create_or_update_s": round(vendor_s, 4),
        "vendors_first_sync": {"api_calls": VENDORS, "wall_s": round(vendor_wall, 1)},
        "ticket_create_s": round(ticket_s, 4),
        "tickets_backfill": {"api_calls": TICKETS, "wall_s": round(TICKETS * ticket_s, 1)},
    }


def webhook_burst() -> dict[str, Any]:
    """BURST signed deliveries for BURST distinct tickets through the receiver (`ml-connector
    webhook serve`, one worker, SQLite ledger, 32 keep-alive connections), then the run the
    inbox sensor requests (`dagster job execute -j webhook_events`: drain, fetch the
    tickets, write their Intacct records). Time until all are in Intacct is the burst plus
    that run; a deployed sensor adds up to its interval
    (ML_CONNECTOR_INBOX_SENSOR_INTERVAL_S, default 30 s) before the run starts."""
    intacct_config, zendesk_config = _configs()
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_sandboxes(intacct_config=intacct_config, zendesk_config=zendesk_config) as sandboxes,
        ProcessPoolExecutor(1) as pool,
    ):
        seed_vendors(sandboxes, vendors=200)
        cli = Cli(sandboxes, Path(tmp), **{settings.ENV_ZENDESK_WEBHOOK_SECRETS: wt.SECRET})
        cli.run("job", "execute", "-m", MODULE, "-j", "vendor_sync")
        # About a tenth of seeded tickets belong to no organization: seed enough for BURST.
        seed_tickets(sandboxes, tickets=BURST * 5 // 4, days=1)
        with sandboxes.zendesk() as z:
            tickets = [t for t in z.get("/_sandbox/tickets").json() if t.get("organization_id")]
        tickets = tickets[:BURST]
        ticket_ids = [t["id"] for t in tickets]
        ledger_url = cli.env[settings.ENV_STAGING_DATABASE_URL]
        with wt.receiver(ledger_url, workers=1) as (port, _server):
            requests = [_signed(port, ticket) for ticket in tickets]
            load_before = os.getloadavg()[0]
            started = time.perf_counter()
            burst = pool.submit(wt.load, port, requests, wt.CONCURRENCY).result()
        drain = cli.run("job", "execute", "-m", MODULE, "-j", "webhook_events")
        all_in_s = time.perf_counter() - started
        store = StagingStore.open(ledger_url)
        try:
            # Tickets of organizations that stand for no active vendor wait in quarantine
            # (unmatched), by design: they are owed no Intacct record.
            unmatched = store.quarantine_count("ticket_unmatched")
        finally:
            store.dispose()
        with sandboxes.intacct() as i:
            records = i.get(f"/_sandbox/records/{settings.INTACCT_TICKET_OBJECT}").json()
    latencies = sorted(burst["latencies"])
    quantiles = statistics.quantiles(latencies, n=100)
    written = {int(r["ticket_id"]) for r in records}
    return {
        "deliveries": len(requests),
        "ledger": "sqlite",
        "receiver_workers": 1,
        "concurrency": wt.CONCURRENCY,
        "statuses": burst["statuses"],
        "deliveries_per_s": round(burst["statuses"].get(200, 0) / burst["elapsed_s"], 1),
        "p50_ms": round(quantiles[49] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
        "webhook_events_run": drain,
        "tickets_in_intacct": len(written & set(ticket_ids)),
        "tickets_unmatched": unmatched,
        # Other work on the machine competes for its 2 cores; say how busy it was.
        "load_avg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "all_in_intacct_s": round(all_in_s, 1),
    }


def _signed(port: int, ticket: dict[str, Any]) -> bytes:
    """One signed delivery of an existing ticket, shaped as bench.webhook_throughput's,
    carrying the ticket's own organization and subject."""
    timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event = json.loads(wt.payload(int(ticket["id"])))
    event["detail"]["organization_id"] = str(ticket["organization_id"])
    event["detail"]["subject"] = ticket["subject"]
    body = json.dumps(event).encode()
    head = (
        f"POST {settings.WEBHOOK_PATH} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{TIMESTAMP_HEADER}: {timestamp}\r\n"
        f"{SIGNATURE_HEADER}: {sign(wt.SECRET, body, timestamp)}\r\n"
        f"{INVOCATION_ID_HEADER}: {uuid.uuid4().hex}\r\n\r\n"
    )
    return head.encode() + body


PARTS: dict[str, Callable[[], dict[str, Any]]] = {
    "vendors": vendors,
    "backfill": backfill,
    "per_record": per_record,
    "webhook_burst": webhook_burst,
}


def main() -> None:
    for name in sys.argv[1:] or list(PARTS):
        started = time.perf_counter()
        results = PARTS[name]()
        results["wall_s"] = round(time.perf_counter() - started, 1)
        path = record(f"scale_{name}", results)
        print(json.dumps(results, indent=2, default=str))
        print(f"written to {path}", flush=True)


if __name__ == "__main__":
    main()
