"""Zendesk test helpers: a sandbox on an ephemeral port with short delays, clients tuned
for it, and a replay server that answers with recorded fixture bytes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from connector_pipeline.sandbox.zendesk import (
    ZendeskSandbox,
    ZendeskSandboxConfig,
    create_app,
    sandbox_env,
)
from connector_pipeline.zendesk import ZendeskClient
from connector_pipeline_tests.support import ServerHandle, serve_asgi

# Short delays so the suite stays fast on a loaded 2-core machine; limits stay real.
FAST_SANDBOX: dict[str, Any] = {
    "job_delay_s": 0.05,
    "export_lag_s": 0.0,
    "webhook_retry_base_s": 0.05,
    "webhook_timeout_s": 5.0,
}
FAST_CLIENT: dict[str, Any] = {
    "timeout_s": 15.0,
    "retry_budget_s": 20.0,
    "default_retry_after_s": 0.3,
    "backoff_initial_s": 0.05,
    "backoff_max_s": 0.5,
    "backoff_jitter_s": 0.05,
    "job_poll_initial_s": 0.02,
    "job_poll_max_s": 0.2,
    "job_timeout_s": 60.0,
}


@dataclass
class RunningSandbox:
    server: ServerHandle
    sandbox: ZendeskSandbox
    config: ZendeskSandboxConfig

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def env(self) -> dict[str, str]:
        return sandbox_env(self.url, self.config)

    def client(self, **overrides: Any) -> ZendeskClient:
        return ZendeskClient.from_env(self.env, **{**FAST_CLIENT, **overrides})

    def scenario(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/_sandbox/stats", timeout=30).json())

    def api(self) -> httpx.Client:
        """A raw protocol client with the sandbox admin's API token."""
        return httpx.Client(
            base_url=self.url,
            auth=(f"{self.config.email}/token", self.config.api_token),
            timeout=30,
        )


@contextmanager
def running_sandbox(**overrides: Any) -> Iterator[RunningSandbox]:
    config = ZendeskSandboxConfig(**{**FAST_SANDBOX, **overrides})
    app = create_app(config)
    with serve_asgi(app) as server:
        yield RunningSandbox(server, app.state.sandbox, config)


@pytest.fixture
def zendesk() -> Iterator[RunningSandbox]:
    with running_sandbox() as running:
        yield running


@pytest.fixture
def sandbox_factory() -> Callable[..., Any]:
    return running_sandbox


Route = tuple[int, bytes, dict[str, str]]


@contextmanager
def replay_server(
    answer: Callable[[str, str, dict[str, str]], Route],
) -> Iterator[ServerHandle]:
    """A real HTTP server whose answers come from `answer(method, path, query)`: recorded
    bytes, served as Zendesk served them."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def any_route(path: str, request: Request) -> Response:
        status, body, headers = answer(request.method, "/" + path, dict(request.query_params))
        media = "application/json; charset=utf-8" if body[:1] in (b"{", b"[") else "text/plain"
        return Response(body, status_code=status, headers=headers, media_type=media)

    with serve_asgi(app) as server:
        yield server


def replay_client(server: ServerHandle, **overrides: Any) -> ZendeskClient:
    return ZendeskClient(
        base_url=server.url, email="a@example.com", api_token="t", **{**FAST_CLIENT, **overrides}
    )
