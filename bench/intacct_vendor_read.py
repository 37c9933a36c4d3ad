"""Read 10,000 VENDOR records from the sandbox gateway: HTTP calls and seconds.

The sandbox runs in its own process (as the real gateway would be remote), seeded with
10,000 vendors. Measured: the keyset `query` read the vendor asset uses (2,000 per page),
the legacy readByQuery/readMore read (1,000 per page) for comparison, and the keyset read
again with 50 ms of gateway latency per call to show that the call count, not the data
volume, dominates over a real network.

Usage: python -m bench.intacct_vendor_read [--vendors N]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx

from bench.common import main, peak_rss_mib
from connector_pipeline.intacct import IntacctClient
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig, sandbox_env
from connector_pipeline.servers import stop_process
from connector_pipeline.sync.vendors import SOURCE_FIELDS

NAME = "intacct_vendor_read"
DEFAULT_VENDORS = 10_000
SLOW_LATENCY_MS = 50
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_sandbox(vendors: int, latency_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    code = (
        "from connector_pipeline.sandbox.intacct import IntacctSandboxConfig, serve;"
        f"serve(IntacctSandboxConfig(seed_vendors={vendors}, latency_ms={latency_ms}),"
        f" port={port})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_sandbox/stats", timeout=1).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_process(proc)
    raise RuntimeError("sandbox did not start")


def _measure(url: str, how: str) -> dict[str, Any]:
    env = sandbox_env(url, IntacctSandboxConfig())
    with IntacctClient.from_env(env) as client:
        started = time.perf_counter()
        records = 0
        if how == "query_keyset":
            for page in client.iter_changed("VENDOR", SOURCE_FIELDS["VENDOR"]):
                records += len(page)
        else:
            fields = [f for f in SOURCE_FIELDS["VENDOR"] if "." not in f]
            for page in client.iter_read_by_query("VENDOR", fields):
                records += len(page)
        seconds = time.perf_counter() - started
        return {
            "records": records,
            "http_calls": client.http_calls,
            "calls_by_function": client.calls_by_function(),
            "seconds": round(seconds, 3),
            "records_per_second": round(records / seconds) if seconds else None,
        }


def run(vendors: int = DEFAULT_VENDORS) -> dict[str, Any]:
    results: dict[str, Any] = {
        "vendors": vendors,
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }
    proc, url = _start_sandbox(vendors, 0)
    try:
        results["query_keyset"] = _measure(url, "query_keyset")
        results["read_by_query"] = _measure(url, "read_by_query")
    finally:
        stop_process(proc)
    proc, url = _start_sandbox(vendors, SLOW_LATENCY_MS)
    try:
        results[f"query_keyset_latency_{SLOW_LATENCY_MS}ms"] = _measure(url, "query_keyset")
    finally:
        stop_process(proc)
    results["peak_rss_mib_client"] = round(peak_rss_mib(), 1)
    # Shared 2-core machines: the load says how much the seconds above can be trusted.
    results["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vendors", type=int, default=DEFAULT_VENDORS)
    args = parser.parse_args()
    main(NAME, lambda: run(args.vendors))
