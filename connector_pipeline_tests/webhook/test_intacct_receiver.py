"""`POST /webhooks/intacct` on a real server, both ledgers: verified deliveries become
hints (idempotency key and time, nothing else); forged, stale, foreign and replayed ones
store nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text

from connector_pipeline import settings
from connector_pipeline.intacct.webhooks import TriggerConfig
from connector_pipeline.staging import StagingStore
from connector_pipeline.staging.schema import intacct_hints
from connector_pipeline.webhook.app import create_app
from connector_pipeline_tests.support import ServerHandle, serve_asgi
from connector_pipeline_tests.webhook.deliveries import (
    INTACCT_CLIENT_ID,
    INTACCT_CLIENT_SECRET,
    SECRET,
    intacct_trigger_headers,
)

CONFIG = TriggerConfig(client_id=INTACCT_CLIENT_ID, key=INTACCT_CLIENT_SECRET)
BODY = b'{"object":"VENDOR","event":"update","VENDORID":"V1","NAME":"Never stored"}'


@contextmanager
def receiver(store: StagingStore, config: TriggerConfig | None = CONFIG) -> Iterator[ServerHandle]:
    with serve_asgi(create_app(store, secrets=[SECRET], intacct_trigger=config)) as handle:
        yield handle


def deliver(h: ServerHandle, headers: dict[str, str], body: bytes = BODY) -> httpx.Response:
    return httpx.post(h.url + settings.INTACCT_WEBHOOK_PATH, content=body, headers=headers)


def hints(store: StagingStore) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(intacct_hints.select())]


def test_a_verified_delivery_is_stored_as_a_hint_and_a_retry_is_a_duplicate(
    store: StagingStore,
) -> None:
    with receiver(store) as h:
        first = deliver(h, intacct_trigger_headers(key="idem-7"))
        assert (first.status_code, first.json()) == (200, {"status": "accepted"})
        again = deliver(h, intacct_trigger_headers(key="idem-7"))  # Intacct's retry
        assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
        counts = httpx.get(h.url + "/healthz").json()["intacct_deliveries"]
        assert (counts["accepted"], counts["duplicate"]) == (1, 1)
    [row] = hints(store)
    # A hint, never data: nothing of the body or the token is kept.
    assert set(row) == {"id", "idempotency_key", "received_at", "consumed_at"}
    assert row["idempotency_key"] == "idem-7" and row["consumed_at"] is None


def _alg_none() -> dict[str, str]:
    token = jwt.encode({"iat": int(time.time())}, key="", algorithm="none")
    context = intacct_trigger_headers()["X-Trusted-Context"]
    return {"Authorization": f"Bearer {token}", "X-Trusted-Context": context}


# Built when the test runs, not when it is collected: a token minted at collection would
# be stale by the time a long suite reaches it.
UNVERIFIED: dict[str, tuple[Callable[[], dict[str, str]], str]] = {
    "forged": (
        lambda: intacct_trigger_headers(secret="forged-secret-of-at-least-32-bytes!"),
        "bad_token",
    ),
    "stale": (lambda: intacct_trigger_headers(issued_at=time.time() - 3600), "stale"),
    "future": (lambda: intacct_trigger_headers(issued_at=time.time() + 3600), "not_yet_valid"),
    "wrong-client": (
        lambda: intacct_trigger_headers(client_id="someone-else.app.sage.com"),
        "wrong_client",
    ),
    "no-token": (lambda: {"X-Trusted-Context": "e30=", "Idempotency-Key": "k"}, "missing_token"),
    "alg-none": (_alg_none, "bad_token"),
    "no-context": (
        lambda: {"Authorization": intacct_trigger_headers()["Authorization"]},
        "missing_context",
    ),
    "junk": (
        lambda: {**intacct_trigger_headers(), "X-Trusted-Context": "not base64 json!"},
        "bad_context",
    ),
}


@pytest.mark.parametrize("case", list(UNVERIFIED))
def test_unverified_deliveries_get_401_and_store_nothing(store: StagingStore, case: str) -> None:
    make_headers, reason = UNVERIFIED[case]
    with receiver(store) as h:
        response = deliver(h, make_headers())
    assert response.status_code == 401
    assert response.json()["error"] == reason
    assert hints(store) == []


def test_without_configuration_every_delivery_is_refused(store: StagingStore) -> None:
    with receiver(store, config=None) as h:
        response = deliver(h, intacct_trigger_headers())
    assert (response.status_code, response.json()["error"]) == (401, "not_configured")
    assert hints(store) == []


def test_a_ledger_failure_gives_503_and_intacct_s_retry_is_accepted_later(
    store: StagingStore,
) -> None:
    with receiver(store) as h:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE intacct_hints RENAME TO intacct_hints_away"))
        try:
            failed = deliver(h, intacct_trigger_headers(key="idem-retry"))
        finally:
            with store.engine.begin() as conn:
                conn.execute(text("ALTER TABLE intacct_hints_away RENAME TO intacct_hints"))
        assert failed.status_code == 503
        assert failed.headers["Retry-After"] == str(settings.WEBHOOK_RETRY_AFTER_S)
        retried = deliver(h, intacct_trigger_headers(key="idem-retry"))
        assert retried.json() == {"status": "accepted"}
    assert [r["idempotency_key"] for r in hints(store)] == ["idem-retry"]


def test_configuration_refuses_mixed_algorithm_families() -> None:
    with pytest.raises(ValueError, match="one family only"):
        TriggerConfig(client_id="c", key="k", algorithms=("HS256", "RS256"))
    env = {
        settings.ENV_INTACCT_WEBHOOK_CLIENT_ID: "c",
        settings.ENV_INTACCT_WEBHOOK_KEY: "k",
        settings.ENV_INTACCT_WEBHOOK_ALGORITHMS: "HS512",
    }
    assert TriggerConfig.from_env(env) == TriggerConfig("c", "k", ("HS512",))
    assert TriggerConfig.from_env({}) is None
