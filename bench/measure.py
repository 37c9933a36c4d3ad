"""Run one command and report its wall time and the peak resident memory of its whole
process tree: `python -m bench.measure CMD...` runs CMD, then prints one JSON line
`{"returncode", "wall_s", "peak_rss_mib"}` on stderr. Only CMD and what it spawns are this
process's children, so RUSAGE_CHILDREN's maximum is theirs alone (Dagster runs steps in
child processes: the largest of them is the figure that matters)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def main() -> int:
    started = time.perf_counter()
    returncode = subprocess.call(sys.argv[1:])
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "returncode": returncode,
                "wall_s": round(time.perf_counter() - started, 2),
                "peak_rss_mib": round(peak_kib / 1024, 1),
            }
        ),
        file=sys.stderr,
    )
    return returncode


if __name__ == "__main__":
    raise SystemExit(main())
