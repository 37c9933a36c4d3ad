"""`POST /webhooks/intacct`: Intacct outbound webhook deliveries, kept as hints.

A delivery is a hint, never data (DESIGN decision 13): once its bearer JWT and trusted
context check out, the receiver stores only its idempotency key and the time, and answers
200 after the commit. The body is read (so the connection can be reused) and thrown away.
The hint sensor then wakes the incremental vendor read, which writes only what changed in
Intacct: a forged delivery that got through could cost a read, never a wrong write.

Answers: 200 accepted or duplicate (same idempotency key); 401 when unverified or when the
receiver has no Intacct configuration (never retried by Intacct, which retries only 408, 429
and 5xx); 413 / 408 for oversized or slow bodies; 503 with Retry-After when the ledger
cannot be written, so Intacct retries and nothing acknowledged is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connector_pipeline import settings
from connector_pipeline.intacct.webhooks import TriggerConfig, TriggerRejected, verify_trigger
from connector_pipeline.staging.hints import HintAppend, IntacctHints
from connector_pipeline.staging.store import StagingStore
from connector_pipeline.webhook.access_log import log_fields
from connector_pipeline.webhook.body import BodyRejected, read_body
from connector_pipeline.webhook.counters import DeliveryCounters
from connector_pipeline.webhook.ledger import Ledger, LedgerUnavailable, not_stored_response

log = logging.getLogger(__name__)


def add_intacct_route(
    app: FastAPI,
    ledger: Ledger,
    config: TriggerConfig | None,
    counters: DeliveryCounters,
    *,
    body_timeout_s: float,
    clock: Callable[[], float] = time.time,
) -> None:
    def reject(request: Request, status: int, reason: str, detail: str) -> JSONResponse:
        counters.rejected(reason)
        log_fields(request.scope).update(outcome="rejected", reason=reason, source="intacct")
        return JSONResponse({"error": reason, "detail": detail}, status_code=status)

    @app.post(
        settings.INTACCT_WEBHOOK_PATH,
        summary="Receive one Intacct outbound webhook delivery (a hint to read vendors)",
        responses={
            401: {"description": "Missing or wrong bearer token, trusted context or client id"},
            408: {"description": "Body arrived too slowly"},
            413: {"description": "Body larger than the limit"},
            503: {"description": "Ledger unavailable; retry"},
        },
    )
    async def receive_intacct_delivery(request: Request) -> JSONResponse:
        if config is None:
            return reject(
                request,
                401,
                "not_configured",
                f"set {settings.ENV_INTACCT_WEBHOOK_CLIENT_ID} and "
                f"{settings.ENV_INTACCT_WEBHOOK_KEY} to accept Intacct deliveries",
            )
        try:
            delivery = verify_trigger(request.headers, config, now=clock())
        except TriggerRejected as exc:
            return reject(request, 401, exc.reason, str(exc))
        try:
            await read_body(
                request,
                max_bytes=settings.INTACCT_WEBHOOK_MAX_BODY_BYTES,
                timeout_s=body_timeout_s,
            )
        except BodyRejected as exc:
            return reject(request, exc.status, exc.reason, str(exc))

        def append(store: StagingStore) -> HintAppend:
            return IntacctHints(store).append(delivery.idempotency_key)

        try:
            appended = await ledger.call(append)
        except LedgerUnavailable as exc:
            counters.ledger_error()
            log_fields(request.scope).update(outcome="ledger_error", reason=str(exc))
            log.error("Intacct hint not stored: %s", exc)
            return not_stored_response()
        fields = log_fields(request.scope)
        fields["source"] = "intacct"
        if appended.duplicate:
            counters.duplicate()
            fields["outcome"] = "duplicate"
            return JSONResponse({"status": "duplicate"})
        counters.accepted()
        fields["outcome"] = "accepted"
        return JSONResponse({"status": "accepted"})
