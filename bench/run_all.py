"""`make bench`: run every benchmark module in this folder, one process each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
# scale: its own target (make bench-scale), it takes about 20 minutes.
NOT_BENCHMARKS = {"__init__", "common", "run_all", "measure", "scale"}


def main() -> int:
    names = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in NOT_BENCHMARKS)
    if len(sys.argv) > 1:
        names = [n for n in names if n in sys.argv[1:]]
    failed = []
    for name in names:
        print(f"== bench.{name}", flush=True)
        if subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent) != 0:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
