"""`python -m bench.chaos` (what `make chaos` runs): a chaos session on the SQLite ledger
and one on Postgres, each verified exactly; the tally printed and written to
bench/results/chaos.md and chaos.json. Exit status 1 when any session's final state
differs from the expected one, or when the verifier cannot detect known damage."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from bench.chaos.damage import prove_detection
from bench.chaos.report import render_markdown, render_tally
from bench.chaos.session import ChaosConfig, ChaosResult, Session
from bench.common import RESULTS_DIR, machine, postgres_server
from connector_pipeline.staging.scratch import scratch_postgres_database


def run_one(ledger: str, config: ChaosConfig, damage: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"chaos-{ledger}-") as tmp:
        work = Path(tmp)
        if ledger == "sqlite":
            return _session(f"sqlite:///{work / 'staging.db'}", ledger, config, work, damage)
        with scratch_postgres_database(postgres_server(), prefix="mlc_chaos") as url:
            return _session(url, ledger, config, work, damage)


def _session(
    url: str, ledger: str, config: ChaosConfig, work: Path, damage: bool
) -> dict[str, Any]:
    session = Session(url, ledger, config, work)
    result: ChaosResult = session.run_then(
        lambda s: prove_detection(s) if damage else None  # while the sandboxes still run
    )
    out = asdict(result)
    out["passed"] = result.passed and (result.damage_check or {}).get("exact", True)
    print(render_tally(out), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--ledger", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--no-damage", action="store_true", help="skip the detection proof")
    parser.add_argument("--no-record", action="store_true", help="do not write bench/results")
    for f in fields(ChaosConfig):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    overrides = {
        f.name: getattr(args, f.name) for f in fields(ChaosConfig) if getattr(args, f.name)
    }
    config = ChaosConfig(**overrides)
    ledgers = ["sqlite", "postgres"] if args.ledger == "both" else [args.ledger]
    results = [run_one(ledger, config, not args.no_damage) for ledger in ledgers]
    passed = all(r["passed"] for r in results)
    if not args.no_record:
        payload = {"benchmark": "chaos", "machine": machine(), "passed": passed, "runs": results}
        from datetime import UTC, datetime

        payload["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "chaos.json").write_text(
            json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
        )
        (RESULTS_DIR / "chaos.md").write_text(render_markdown(payload))
        print(f"written to {RESULTS_DIR / 'chaos.md'} and chaos.json")
    print("chaos: PASSED" if passed else "chaos: FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
