"""Start `workers.py` roles as child processes and always stop them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector_pipeline_tests.support import REPO_ROOT, stop_process

WORKERS = "connector_pipeline_tests.staging.workers"
CHILD_TIMEOUT_S = 180.0


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[Any]
    stderr_path: Path
    stdout_path: Path

    def wait(self, timeout: float = CHILD_TIMEOUT_S) -> int:
        return self.proc.wait(timeout=timeout)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")


class Children:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Child] = []

    def start(self, name: str, role: str, *args: str) -> Child:
        out = self.workdir / f"{name}.stdout"
        err = self.workdir / f"{name}.stderr"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", WORKERS, role, *args],
                cwd=REPO_ROOT,
                stdout=stdout,
                stderr=stderr,
            )
        child = Child(name, proc, err, out)
        self.started.append(child)
        return child

    def wait_all(self) -> None:
        """Wait for every child; fail with their stderr if any exited non-zero."""
        failures = []
        for child in self.started:
            rc = child.wait()
            if rc != 0:
                failures.append(f"{child.name} exited {rc}:\n{child.stderr}")
        assert not failures, "\n".join(failures)


@contextmanager
def children(workdir: Path) -> Iterator[Children]:
    group = Children(workdir)
    try:
        yield group
    finally:
        for child in group.started:
            stop_process(child.proc)
