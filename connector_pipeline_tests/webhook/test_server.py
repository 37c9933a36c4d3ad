"""The receiver as it is served: slow-client guards, and `ml-connector webhook serve` as a
real multi-worker process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from connector_pipeline import settings
from connector_pipeline.staging import StagingStore
from connector_pipeline.webhook.app import create_app
from connector_pipeline.webhook.protocol import guarded_protocol
from connector_pipeline_tests.support import free_port, serve_asgi, stop_process
from connector_pipeline_tests.webhook.deliveries import (
    SECRET,
    WEBHOOK_PATH,
    encode,
    signed_headers,
    ticket_event,
)

CLI = [sys.executable, "-c", "from connector_pipeline.cli import main; main()"]


@pytest.fixture
def sqlite_store(tmp_path: Path) -> StagingStore:
    return StagingStore.open(f"sqlite:///{tmp_path / 'staging.db'}")


def _read_until_closed(sock: socket.socket, limit_s: float) -> bytes:
    sock.settimeout(limit_s)
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def test_headers_sent_too_slowly_are_cut_off(sqlite_store: StagingStore) -> None:
    protocol = guarded_protocol(header_timeout_s=0.3)
    with serve_asgi(create_app(sqlite_store, secrets=[SECRET]), http=protocol) as h:
        with socket.create_connection(("127.0.0.1", h.port), timeout=10) as sock:
            sock.sendall(f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: t\r\nX-Slow: ".encode())
            started = time.monotonic()
            answer = _read_until_closed(sock, limit_s=10)
        assert answer.startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 9  # closed by the guard, not the socket timeout
        # A connection that never sends a byte is closed too.
        with socket.create_connection(("127.0.0.1", h.port), timeout=10) as sock:
            assert _read_until_closed(sock, limit_s=10).startswith(b"HTTP/1.1 408")


def test_oversized_headers_get_431(sqlite_store: StagingStore) -> None:
    protocol = guarded_protocol(max_header_bytes=2048)
    with serve_asgi(create_app(sqlite_store, secrets=[SECRET]), http=protocol) as h:
        with socket.create_connection(("127.0.0.1", h.port), timeout=10) as sock:
            padding = "".join(f"X-Pad-{i}: {'y' * 100}\r\n" for i in range(40))
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: t\r\n{padding}\r\n".encode())
            answer = _read_until_closed(sock, limit_s=10)
        assert answer.startswith(b"HTTP/1.1 431")
        assert b"200 OK" not in answer
        assert httpx.get(h.url + "/healthz", timeout=10).status_code == 200


def test_keep_alive_deliveries_pass_the_guards(sqlite_store: StagingStore) -> None:
    protocol = guarded_protocol(header_timeout_s=0.3)
    with (
        serve_asgi(create_app(sqlite_store, secrets=[SECRET]), http=protocol) as h,
        httpx.Client(base_url=h.url, timeout=10) as client,
    ):
        for ticket_id in (1, 2, 3):
            body = encode(ticket_event(ticket_id))
            response = client.post(WEBHOOK_PATH, content=body, headers=signed_headers(body))
            assert response.status_code == 200
            time.sleep(0.5)  # idle longer than the header deadline, within keep-alive
    assert sqlite_store.inbox_stats()["total"] == 3


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"receiver exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("receiver did not become healthy")


def test_ml_connector_webhook_serve_runs_workers_and_logs_json(tmp_path: Path) -> None:
    port = free_port()
    ledger_url = f"sqlite:///{tmp_path / 'staging.db'}"
    env = {
        **os.environ,
        settings.ENV_ZENDESK_WEBHOOK_SECRETS: f"{SECRET},previous-secret",
        settings.ENV_STAGING_DATABASE_URL: ledger_url,
    }
    command = [
        *CLI,
        "webhook",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    stderr_path = tmp_path / "receiver.log"
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, proc)
            bodies = [encode(ticket_event(i)) for i in range(1, 9)]
            with httpx.Client(base_url=url, timeout=30) as client:
                statuses = [
                    client.post(WEBHOOK_PATH, content=b, headers=signed_headers(b)).status_code
                    for b in bodies
                ]
                forged = client.post(
                    WEBHOOK_PATH, content=bodies[0], headers=signed_headers(bodies[0], secret="x")
                )
            assert statuses == [200] * 8
            assert forged.status_code == 401
        finally:
            stop_process(proc)
    store = StagingStore.open(ledger_url)
    try:
        assert store.inbox_stats()["total"] == 8
    finally:
        store.dispose()
    lines = [json.loads(line) for line in stderr_path.read_text().splitlines() if line.strip()]
    access = [line for line in lines if line.get("logger", "").endswith("webhook.access")]
    assert len([a for a in access if a.get("path") == WEBHOOK_PATH]) == 9
    assert {a["status"] for a in access if a.get("path") == WEBHOOK_PATH} == {200, 401}
    assert len({a.get("invocation_id") for a in access if a.get("path") == WEBHOOK_PATH}) == 9
    assert SECRET not in stderr_path.read_text()


def test_serve_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != settings.ENV_ZENDESK_WEBHOOK_SECRETS}
    result = subprocess.run(
        [*CLI, "webhook", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert settings.ENV_ZENDESK_WEBHOOK_SECRETS.encode() in result.stderr
