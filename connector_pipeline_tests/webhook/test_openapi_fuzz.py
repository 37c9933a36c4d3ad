"""Schemathesis against the receiver's own OpenAPI schema, on a real server: no request,
signed or not, may produce a 5xx or an answer the schema does not document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from connector_pipeline.staging import StagingStore
from connector_pipeline.webhook.app import create_app
from connector_pipeline_tests.support import ServerHandle, serve_asgi
from connector_pipeline_tests.webhook.deliveries import SECRET, WEBHOOK_PATH, signed_headers

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzzed_receiver(tmp_path: Path) -> Iterator[ServerHandle]:
    """A receiver and ledger of its own for each test: what one test stored (deliveries,
    invocation ids it deduplicates) can never change what another sees, whatever order
    they run in."""
    store = StagingStore.open(f"sqlite:///{tmp_path / 'staging.db'}")
    try:
        with serve_asgi(create_app(store, secrets=[SECRET])) as handle:
            yield handle
    finally:
        store.dispose()


# The schema the app serves at /openapi.json (test_receiver checks it is served); built
# here without a server because parametrization happens at collection time.
schema = schemathesis.openapi.from_dict(create_app(secrets=[SECRET]).openapi())


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    # The same examples on every run and no example database carried between runs.
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_unsigned_requests_never_fail_the_server(case: Any, fuzzed_receiver: ServerHandle) -> None:
    response = case.call(base_url=fuzzed_receiver.url, timeout=30)
    case.validate_response(response, checks=CHECKS)


def _post_signed(case: Any, receiver: ServerHandle) -> None:
    """A generated webhook request, signed: the body reaches the parser and the ledger."""
    body = json.dumps(case.body).encode() if isinstance(case.body, (dict, list)) else b"{}"
    generated = {k: v for k, v in (case.headers or {}).items() if k.lower().startswith("x-")}
    headers = signed_headers(body, invocation_id=generated.get("X-Zendesk-Webhook-Invocation-Id"))
    response = requests.post(receiver.url + WEBHOOK_PATH, data=body, headers=headers, timeout=30)
    assert response.status_code in (200, 400), response.text
    case.validate_response(response, checks=CHECKS)


def test_signed_fuzzed_payloads_never_fail_the_server_and_reach_the_ledger(
    fuzzed_receiver: ServerHandle,
) -> None:
    """With a valid signature the generated bodies get past the signature check into the
    parser and the inbox, not just bounced; counted on this test's own receiver, so it
    needs no other test to have run first."""

    @given(case=schema[WEBHOOK_PATH]["POST"].as_strategy())
    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def post(case: Any) -> None:
        _post_signed(case, fuzzed_receiver)

    post()
    counts = requests.get(fuzzed_receiver.url + "/healthz", timeout=30).json()["deliveries"]
    assert counts["accepted"] > 0
    assert counts["rejected_by_reason"].get("bad_payload", 0) > 0
    assert counts["ledger_error"] == 0
