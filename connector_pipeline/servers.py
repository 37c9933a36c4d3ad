"""Running things locally: an ASGI app under uvicorn in a thread, and stopping child
processes. Used by the sandboxes, the demo, the tests and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

SERVER_START_TIMEOUT_S = 15.0
SERVER_STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RunningServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def serve_in_thread(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, **config: Any
) -> Iterator[RunningServer]:
    """Serve `app` with uvicorn in this process until the block ends (port 0: an
    ephemeral port). Extra keyword arguments go to `uvicorn.Config`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        options: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on"}
        server = uvicorn.Server(uvicorn.Config(app, **{**options, **config}))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while not server.started:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError(f"uvicorn did not start on {host}:{port}")
                time.sleep(0.01)
            yield RunningServer(host, sock.getsockname()[1])
        finally:
            server.should_exit = True
            thread.join(timeout=SERVER_STOP_TIMEOUT_S)
    finally:
        sock.close()


def stop_process(
    proc: subprocess.Popen[Any], timeout: float = SERVER_STOP_TIMEOUT_S, *, group: bool = False
) -> None:
    """terminate, a bounded wait, then kill: children here may ignore SIGTERM. With
    `group` (for a process started with `start_new_session=True`), whatever is left of
    its process group afterwards is killed too, so its own children never outlive it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    if group:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
