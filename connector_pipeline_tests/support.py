"""Helpers shared by the tests: real servers on ephemeral ports, fixture lookup,
child processes that are always stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def fixtures_dir(system: str) -> Path:
    """`../shared/fixtures/<system>`: skip when absent, fail when CI=true."""
    path = SHARED_FIXTURES / system
    if not path.is_dir():
        message = f"recorded fixtures not found at {path}"
        if in_ci():
            pytest.fail(message + " (CI=true: fixtures are required)")
        pytest.skip(message)
    return path


def fixture_bytes(system: str, name: str) -> bytes:
    return (fixtures_dir(system) / name).read_bytes()


class ServerHandle:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread, port: int) -> None:
        self.server = server
        self.thread = thread
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


@contextmanager
def serve_asgi(app: Any, **config: Any) -> Iterator[ServerHandle]:
    """Run an ASGI app under uvicorn in this process, on an ephemeral loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    cfg = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, **config)
    server = uvicorn.Server(cfg)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    handle = ServerHandle(server, thread, port)
    try:
        yield handle
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    """terminate, a bounded wait, then kill: children here may ignore SIGTERM."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
