"""Helpers shared by the tests: real servers on ephemeral ports, fixture lookup,
child processes that are always stopped."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from connector_pipeline.servers import RunningServer, serve_in_thread
from connector_pipeline.servers import stop_process as stop_process  # re-exported for the tests

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def fixtures_dir(system: str) -> Path:
    """`../shared/fixtures/<system>`: skip when absent, fail when CI=true."""
    path = SHARED_FIXTURES / system
    if not path.is_dir():
        message = (
            f"recorded API payloads not found at {path}: they are not part of this "
            "repository but of the project's shared folder, which sits beside the clone "
            f"(../shared/fixtures/{system}); put a copy of shared/ next to the repository "
            "to run these tests (see README, Tests)"
        )
        if in_ci():
            pytest.fail(message + " (CI=true: fixtures are required)")
        pytest.skip(message)
    return path


def fixture_bytes(system: str, name: str) -> bytes:
    return (fixtures_dir(system) / name).read_bytes()


# One implementation, shared with the sandboxes and the demo.
ServerHandle = RunningServer
serve_asgi = serve_in_thread


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
