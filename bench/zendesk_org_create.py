"""Create 10,000 organizations through `ZendeskClient.create_many_organizations` against the
sandbox Zendesk at the Enterprise limit (700 requests per minute): HTTP calls by endpoint,
seconds, and whether any request drew a 429.

Two job speeds: the sandbox default (jobs finish 0.2 s after submission) and a realistic
one (5 s per 100-organization job, as zenpy's recordings against Zendesk show 5-10 s), where
the 30-jobs-in-flight limit sets the pace. The client runs with its production settings.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from bench.common import main, peak_rss_mib
from connector_pipeline.sandbox.zendesk import ZendeskSandboxConfig, create_app, sandbox_env
from connector_pipeline.zendesk import ZendeskClient

ORGANIZATIONS = 10_000
JOB_DELAYS_S = {"sandbox_default": 0.2, "realistic": 5.0}


@contextmanager
def _serve(config: ZendeskSandboxConfig) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _one(job_delay_s: float) -> dict[str, Any]:
    config = ZendeskSandboxConfig.for_plan("enterprise", job_delay_s=job_delay_s)
    organizations = [
        {"name": f"Vendor {i:05d}", "external_id": f"V{i:05d}"} for i in range(ORGANIZATIONS)
    ]
    with _serve(config) as url:
        client = ZendeskClient.from_env(sandbox_env(url, config))
        started = time.perf_counter()
        results = client.create_many_organizations(organizations)
        seconds = time.perf_counter() - started
        stats = httpx.get(f"{url}/_sandbox/stats", timeout=30).json()
        client.close()
    return {
        "job_delay_s": job_delay_s,
        "organizations": ORGANIZATIONS,
        "created_ok": sum(r.ok for r in results),
        "http_calls": client.http_calls,
        "calls_by_endpoint": client.calls_by_endpoint(),
        "seconds": round(seconds, 2),
        "organizations_per_s": round(ORGANIZATIONS / seconds, 1),
        "retries": client.retries,
        "paced_s": round(client.paced_s, 2),
        "responses_429": stats["responses_by_status"].get("429", 0),
        "max_jobs_in_flight": stats["max_jobs_in_flight_seen"],
        "sandbox_organizations": stats["organizations"],
    }


def run() -> dict[str, Any]:
    runs = {name: _one(delay) for name, delay in JOB_DELAYS_S.items()}
    return {
        "plan_limit_per_minute": 700,
        "runs": runs,
        "http_calls": runs["sandbox_default"]["http_calls"],
        "seconds": runs["sandbox_default"]["seconds"],
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


if __name__ == "__main__":
    main("zendesk_org_create", run)
