"""Shared benchmark plumbing: every benchmark is a module `bench/<name>.py` with a
`run() -> dict` that returns its measurements; results land in `bench/results/<name>.json`
together with the machine they were measured on. Run one with `python -m bench.<name>`,
all with `make bench`."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"
# The Postgres server benchmarks create their scratch databases on: the tests' variable,
# else the local server every development machine here has.
POSTGRES_ENV = "CONNECTOR_TEST_POSTGRES_URL"
POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_server() -> str:
    return os.environ.get(POSTGRES_ENV) or POSTGRES_DEFAULT


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def record(name: str, results: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "results": results,
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path


def main(name: str, run: Callable[[], dict[str, Any]]) -> None:
    started = time.perf_counter()
    results = run()
    results.setdefault("wall_s", round(time.perf_counter() - started, 3))
    path = record(name, results)
    print(json.dumps(results, indent=2, default=str))
    print(f"written to {path}")
