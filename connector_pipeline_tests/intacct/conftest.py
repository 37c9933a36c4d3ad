"""Sandbox gateway servers and clients for the Intacct tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from connector_pipeline.intacct import IntacctClient
from connector_pipeline.sandbox.intacct import IntacctSandbox, IntacctSandboxConfig, create_app
from connector_pipeline.sandbox.intacct import sandbox_env as env_for
from connector_pipeline_tests.support import serve_asgi

# Fast retries: tests must not sleep for real backoff intervals.
FAST_RETRIES: dict[str, Any] = {
    "backoff_base_s": 0.01,
    "backoff_max_s": 0.1,
    "retry_budget_s": 30.0,
    "timeout_s": 15.0,
}


@dataclass
class RunningSandbox:
    url: str
    config: IntacctSandboxConfig
    sandbox: IntacctSandbox

    def env(self) -> dict[str, str]:
        return env_for(self.url, self.config)

    def client(self, **overrides: Any) -> IntacctClient:
        return IntacctClient.from_env(self.env(), **{**FAST_RETRIES, **overrides})

    def post(self, path: str, payload: Any = None) -> Any:
        response = httpx.post(f"{self.url}/_sandbox/{path}", json=payload or {}, timeout=30)
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}/_sandbox/{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def raw(self, body: bytes) -> httpx.Response:
        return httpx.post(
            self.url + "/ia/xml/xmlgw.phtml",
            content=body,
            headers={"Content-Type": "application/xml"},
            timeout=30,
        )


SandboxFactory = Callable[..., RunningSandbox]


@pytest.fixture
def start_sandbox() -> Iterator[SandboxFactory]:
    """Start sandbox gateways on ephemeral ports; all are stopped after the test."""
    stack: list[Any] = []

    def start(**config: Any) -> RunningSandbox:
        cfg = IntacctSandboxConfig(**config)
        app = create_app(cfg)
        context = serve_asgi(app)
        handle = context.__enter__()
        stack.append(context)
        return RunningSandbox(handle.url, cfg, app.state.sandbox)

    try:
        yield start
    finally:
        for context in reversed(stack):
            context.__exit__(None, None, None)


@pytest.fixture
def gateway(start_sandbox: SandboxFactory) -> RunningSandbox:
    return start_sandbox(seed_vendors=50)
