"""Webhook receiver throughput: verified, committed deliveries per second and latency.

The receiver runs as a real server (`ml-connector webhook serve`, 1 and 2 workers) with the
ledger on SQLite and on Postgres; a load generator in another process replays pre-signed
deliveries (unique invocation and event ids) over keep-alive connections on loopback.
Afterwards the inbox rows are counted: every 200 must be a row (zero lost).

Postgres comes from CONNECTOR_TEST_POSTGRES_URL (default postgres@127.0.0.1:5432/test); a
fresh database is created for each run and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy.engine import make_url

from bench.common import main, postgres_server
from connector_pipeline import settings
from connector_pipeline.servers import stop_process
from connector_pipeline.staging import StagingStore
from connector_pipeline.staging.scratch import scratch_postgres_database
from connector_pipeline.zendesk.webhooks import (
    INVOCATION_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

SECRET = "bench-secret-not-for-production"
DELIVERIES = int(os.environ.get("WEBHOOK_BENCH_DELIVERIES", "6000"))
WARMUP = 300
CONCURRENCY = int(os.environ.get("WEBHOOK_BENCH_CONCURRENCY", "32"))
WORKER_COUNTS = tuple(int(w) for w in os.environ.get("WEBHOOK_BENCH_WORKERS", "1,2").split(","))
LEDGERS = tuple(os.environ.get("WEBHOOK_BENCH_LEDGERS", "sqlite,postgres").split(","))
REPO = Path(__file__).resolve().parent.parent


def payload(ticket_id: int) -> bytes:
    """An event-subscribed ticket delivery of realistic size (~1 KiB)."""
    return json.dumps(
        {
            "type": "zen:event-type:ticket.status_changed",
            "account_id": 18525119,
            "id": str(uuid.uuid4()),
            "time": "2024-05-02T10:11:12Z",
            "zendesk_event_version": "2022-11-06",
            "subject": f"zen:ticket:{ticket_id}",
            "detail": {
                "actor_id": "6130907993114",
                "assignee_id": "6130907993114",
                "brand_id": "6130830354842",
                "created_at": "2024-05-01T09:00:00Z",
                "description": "The invoice total does not match the purchase order. " * 4,
                "external_id": "",
                "form_id": "6130830344474",
                "group_id": "6130852536346",
                "id": str(ticket_id),
                "is_public": True,
                "organization_id": "6164125400602",
                "priority": "HIGH",
                "requester_id": "6130869168922",
                "status": "OPEN",
                "subject": "Invoice question",
                "submitter_id": "6130869168922",
                "tags": ["billing", "vip"],
                "type": "QUESTION",
                "updated_at": "2024-05-02T10:11:12Z",
                "via": {"channel": "web_service"},
            },
            "event": {"current": "OPEN", "previous": "NEW"},
        }
    ).encode()


def presigned_requests(port: int, count: int, first_ticket: int) -> list[bytes]:
    timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    requests = []
    for i in range(count):
        body = payload(first_ticket + i)
        head = (
            f"POST {settings.WEBHOOK_PATH} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            "User-Agent: Zendesk Webhook\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{TIMESTAMP_HEADER}: {timestamp}\r\n"
            f"{SIGNATURE_HEADER}: {sign(SECRET, body, timestamp)}\r\n"
            f"{INVOCATION_ID_HEADER}: {uuid.uuid4().hex}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


# ---------------------------------------------------------------- load generator process
async def _connection(
    port: int, queue: list[bytes], latencies: list[float], statuses: Counter[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while queue:
            request = queue.pop()
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split()[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in lines[1:]
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            if b"connection: close" in head.lower():
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def _drive(port: int, requests: list[bytes], concurrency: int) -> dict[str, Any]:
    queue = list(reversed(requests))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, queue, latencies, statuses) for _ in range(concurrency))
    )
    return {
        "elapsed_s": time.perf_counter() - started,
        "latencies": latencies,
        "statuses": dict(statuses),
    }


def load(port: int, requests: list[bytes], concurrency: int) -> dict[str, Any]:
    cpu = time.process_time()
    result = asyncio.run(_drive(port, requests, concurrency))
    result["cpu_s"] = time.process_time() - cpu
    return result


# ---------------------------------------------------------------- receiver and ledgers
def cpu_by_pid(processes: list[psutil.Process]) -> dict[int, float]:
    """User + system CPU seconds of each process and its children (workers)."""
    seen: dict[int, float] = {}
    for process in processes:
        try:
            family = [process, *process.children(recursive=True)]
        except psutil.Error:
            continue
        for member in family:
            try:
                times = member.cpu_times()
            except psutil.Error:
                continue
            seen[member.pid] = times.user + times.system
    return seen


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def postgres_backends(database: str | None) -> list[psutil.Process]:
    """The server processes serving `database` (their title names it); shared background
    processes and other databases' backends (other work on the machine) are left out."""
    if database is None:
        return []
    found = []
    for process in psutil.process_iter(["cmdline"]):
        title = " ".join(process.info["cmdline"] or [])
        if title.startswith("postgres:") and f" {database} " in f" {title} ":
            found.append(process)
    return found


def postgres_database() -> Any:
    return scratch_postgres_database(postgres_server(), prefix="mlc_bench")


@contextmanager
def receiver(ledger_url: str, workers: int) -> Iterator[tuple[int, psutil.Process]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {
        **os.environ,
        settings.ENV_ZENDESK_WEBHOOK_SECRETS: SECRET,
        settings.ENV_STAGING_DATABASE_URL: ledger_url,
    }
    command = [
        sys.executable,
        "-c",
        "from connector_pipeline.cli import main; main()",
        "webhook",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"receiver exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("receiver did not start")
            time.sleep(0.2)
        # With several workers, give each a chance to finish importing before the run.
        time.sleep(1.0 * workers)
        yield port, psutil.Process(proc.pid)
    finally:
        stop_process(proc, timeout=20)


def measure(
    ledger: str, ledger_url: str, workers: int, pool: ProcessPoolExecutor
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    with receiver(ledger_url, workers) as (port, server):
        warmup = presigned_requests(port, WARMUP, first_ticket=1)
        pool.submit(load, port, warmup, CONCURRENCY).result()
        requests = presigned_requests(port, DELIVERIES, first_ticket=WARMUP + 1)
        database = make_url(ledger_url).database if ledger == "postgres" else None
        receiver_before = cpu_by_pid([server])
        postgres_before = cpu_by_pid(postgres_backends(database))
        run = pool.submit(load, port, requests, CONCURRENCY).result()
        receiver_cpu = cpu_spent(receiver_before, cpu_by_pid([server]))
        postgres_cpu = cpu_spent(postgres_before, cpu_by_pid(postgres_backends(database)))
    store = StagingStore.open(ledger_url)
    try:
        rows = store.inbox_stats()["total"]
    finally:
        store.dispose()
    latencies = sorted(run["latencies"])
    accepted = run["statuses"].get(200, 0)
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "ledger": ledger,
        "workers": workers,
        "concurrency": CONCURRENCY,
        "deliveries": DELIVERIES,
        "statuses": run["statuses"],
        "deliveries_per_s": round(accepted / run["elapsed_s"], 1),
        "p50_ms": round(quantiles[49] * 1000, 2),
        "p90_ms": round(quantiles[89] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
        "max_ms": round(latencies[-1] * 1000, 2),
        "inbox_rows": rows,
        "lost": WARMUP + accepted - rows,
        # CPU per delivery does not depend on what else the machine runs; with it, the
        # rate an otherwise idle 2-core machine could sustain is 2 s / (sum of the three).
        "cpu_ms_per_delivery": {
            "receiver": round(receiver_cpu / DELIVERIES * 1000, 3),
            "postgres": round(postgres_cpu / DELIVERIES * 1000, 3),
            "load_generator": round(run["cpu_s"] / DELIVERIES * 1000, 3),
        },
        # Other processes on the machine compete for the same 2 cores; say how busy it was.
        "load_avg_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def run() -> dict[str, Any]:
    runs = []
    with ProcessPoolExecutor(1) as pool, tempfile.TemporaryDirectory() as tmp:
        for workers in WORKER_COUNTS:
            if "sqlite" in LEDGERS:
                sqlite_url = f"sqlite:///{Path(tmp) / f'bench-{workers}.db'}"
                runs.append(measure("sqlite", sqlite_url, workers, pool))
                print(json.dumps(runs[-1]), flush=True)
            if "postgres" in LEDGERS:
                with postgres_database() as pg_url:
                    runs.append(measure("postgres", pg_url, workers, pool))
                print(json.dumps(runs[-1]), flush=True)
    postgres = [r for r in runs if r["ledger"] == "postgres"] or runs
    best = max(postgres, key=lambda r: r["deliveries_per_s"])
    return {
        "runs": runs,
        "target": {"deliveries_per_s": 1000, "p99_ms": 50, "ledger": "postgres"},
        "best_postgres": {k: best[k] for k in ("workers", "deliveries_per_s", "p50_ms", "p99_ms")},
        "meets_target": best["deliveries_per_s"] >= 1000 and best["p99_ms"] < 50,
        "zero_lost": all(r["lost"] == 0 for r in runs),
        "load_generator": f"1 process, asyncio, {CONCURRENCY} keep-alive connections",
    }


if __name__ == "__main__":
    main("webhook_throughput", run)
