"""Outbound webhooks of the sandbox Intacct: Platform Trigger deliveries on VENDOR and
CUSTOMER create / update, as Sage documents them (reference: intacct-api.md, "Added
2026-11-26"; developer.sage.com, Intacct developer portal, "Outbound webhooks").

Each change is one delivery: an HTTP POST with `Authorization: Bearer <JWT>`, an
`X-Trusted-Context` header (base64 JSON carrying the client id) and an idempotency key that
stays the same across its attempts. Up to 4 attempts, retried on 408, 429, 500, 502, 503
and 504 (or no answer) after 10 s, 30 s and 90 s; any other answer ends it.

UNCONFIRMED, chosen here and configurable on the receiving side: the JWT is HS256 signed
with the application's client secret (a third party says so), its claims (`iss`, `iat`,
`exp`, `clientId`), the trusted context's layout, the idempotency header's name
(`Idempotency-Key`) and the body (`object`, `event`, `key`, `id`, `timestamp`). The JWT is
built with PyJWT here, not with the receiver's code, so the two can disagree in a test.

Faults for tests and chaos runs: deliveries dropped (never sent), duplicated (sent twice
with the same key) or delayed.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt

log = logging.getLogger(__name__)

TRIGGER_OBJECTS = ("VENDOR", "CUSTOMER")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SAGE_RETRY_DELAYS_S = (10.0, 30.0, 90.0)  # 4 attempts in all
IDEMPOTENCY_HEADER = "Idempotency-Key"
TRUSTED_CONTEXT_HEADER = "X-Trusted-Context"
TOKEN_LIFETIME_S = 300


@dataclass
class TriggerTarget:
    """Where and how the sandbox delivers. `retry_delays_s` shortens Sage's schedule for
    tests; the rates and `delay_s` are faults."""

    url: str
    client_id: str
    client_secret: str
    company_id: str = "sandbox-co"
    objects: tuple[str, ...] = TRIGGER_OBJECTS
    retry_delays_s: tuple[float, ...] = SAGE_RETRY_DELAYS_S
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay_s: float = 0.0
    timeout_s: float = 10.0


@dataclass
class Delivery:
    key: str
    body: bytes
    object_name: str
    attempts: int = 0
    status: str = "pending"  # pending | delivered | failed | dropped
    log: list[dict[str, Any]] = field(default_factory=list)


def bearer_token(target: TriggerTarget, now: float) -> str:
    claims = {
        "iss": "intacct",
        "iat": int(now),
        "exp": int(now) + TOKEN_LIFETIME_S,
        "clientId": target.client_id,
    }
    return jwt.encode(claims, target.client_secret, algorithm="HS256")


def trusted_context(target: TriggerTarget) -> str:
    context = {"clientId": target.client_id, "companyId": target.company_id}
    return base64.b64encode(json.dumps(context).encode("utf-8")).decode("ascii")


class TriggerDispatcher:
    """Sends deliveries from a background thread. `close()` stops it; nothing is left
    running."""

    def __init__(self, *, seed: int = 42) -> None:
        self.target: TriggerTarget | None = None
        self.stats: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._deliveries: dict[str, Delivery] = {}
        self._busy = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._http = httpx.Client()

    # --- configuration and inspection ---

    def configure(self, target: TriggerTarget | None) -> None:
        with self._cond:
            self.target = target

    def deliveries(self) -> list[dict[str, Any]]:
        with self._cond:
            return [
                {
                    "key": d.key,
                    "object": d.object_name,
                    "status": d.status,
                    "attempts": d.attempts,
                    "log": list(d.log),
                }
                for d in self._deliveries.values()
            ]

    def idle(self) -> bool:
        """Nothing queued and nothing being sent (retries still waiting count as queued)."""
        with self._cond:
            return not self._queue and self._busy == 0

    # --- producing ---

    def changed(self, object_name: str, record: dict[str, Any], event: str) -> None:
        """Called by the gateway, under its lock, after a record was created or updated."""
        with self._cond:
            target = self.target
            if target is None or object_name not in target.objects:
                return
            key = str(uuid.uuid4())
            id_field = "VENDORID" if object_name == "VENDOR" else f"{object_name}ID"
            body = json.dumps(
                {
                    "object": object_name,
                    "event": event,
                    "key": str(record.get("RECORDNO", "")),
                    "id": str(record.get(id_field, "")),
                    "timestamp": datetime.now(UTC).isoformat(),
                }
            ).encode("utf-8")
            delivery = Delivery(key=key, body=body, object_name=object_name)
            self._deliveries[key] = delivery
            self.stats["changes"] += 1
            if self._rng.random() < target.drop_rate:
                delivery.status = "dropped"
                self.stats["dropped"] += 1
                return
            due = time.monotonic() + target.delay_s
            self._push(due, key)
            if self._rng.random() < target.duplicate_rate:
                self.stats["duplicated"] += 1
                self._push(due, key)  # the same key twice, as a sender's repeat would be
            self._ensure_worker()

    def _push(self, due: float, key: str) -> None:
        heapq.heappush(self._queue, (due, next(self._order), key))
        self._cond.notify()

    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(
                target=self._work, name="intacct-trigger-dispatcher", daemon=True
            )
            self._thread.start()

    # --- sending ---

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (
                    not self._queue or self._queue[0][0] > time.monotonic()
                ):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(timeout=wait)
                if self._stopping:
                    return
                _, _, key = heapq.heappop(self._queue)
                delivery = self._deliveries[key]
                target = self.target
                self._busy += 1
            try:
                if target is not None:
                    self._attempt(target, delivery)
            finally:
                with self._cond:
                    self._busy -= 1

    def _attempt(self, target: TriggerTarget, delivery: Delivery) -> None:
        now = time.time()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {bearer_token(target, now)}",
            TRUSTED_CONTEXT_HEADER: trusted_context(target),
            IDEMPOTENCY_HEADER: delivery.key,
        }
        status: int | None
        try:
            response = self._http.post(
                target.url, content=delivery.body, headers=headers, timeout=target.timeout_s
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            status = None
            log.info("Intacct trigger delivery %s: no answer (%s)", delivery.key, exc)
        with self._cond:
            delivery.attempts += 1
            delivery.log.append({"attempt": delivery.attempts, "status": status})
            self.stats["attempts"] += 1
            if status == 200:
                delivery.status = "delivered"
                self.stats["delivered"] += 1
            elif (status is None or status in RETRY_STATUSES) and delivery.attempts <= len(
                target.retry_delays_s
            ):
                delay = target.retry_delays_s[delivery.attempts - 1]
                self._push(time.monotonic() + delay, delivery.key)
                self.stats["retried"] += 1
            else:
                delivery.status = "failed"
                self.stats["failed"] += 1

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        self._http.close()
