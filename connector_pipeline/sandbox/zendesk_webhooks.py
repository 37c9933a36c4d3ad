"""Webhook deliveries of the sandbox Zendesk: event-subscribed ticket events, signed as
Zendesk signs them (with the sandbox's own `sign`, so the receiver's verification is
checked against an independent implementation), posted by a background thread and
retried with backoff.

Each event is one invocation with one `X-Zendesk-Webhook-Invocation-Id`, kept across its
retry attempts; the signature timestamp is fresh per attempt. Ticket events carry ids as
strings and enums in upper case in `detail`, as Zendesk's ticket-event payloads do.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from connector_pipeline import settings
from connector_pipeline.sandbox.zendesk_state import Change, ZendeskSandboxConfig, iso

log = logging.getLogger(__name__)

# Zendesk's webhook headers (reference/zendesk-api.md, "Webhooks"), written out here rather
# than imported from the client: the sandbox must not share the receiver's reading of them.
SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
INVOCATION_ID_HEADER = "X-Zendesk-Webhook-Invocation-Id"
WEBHOOK_ID_HEADER = "X-Zendesk-Webhook-Id"
ACCOUNT_ID_HEADER = "X-Zendesk-Account-Id"


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, timestamp + body)), as Zendesk signs deliveries."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


EVENT_PREFIX = "zen:event-type:"
# REST field -> ticket event type fired when it changes.
FIELD_EVENTS = {
    "status": "ticket.status_changed",
    "subject": "ticket.subject_changed",
    "priority": "ticket.priority_changed",
    "type": "ticket.type_changed",
    "organization_id": "ticket.organization_changed",
    "assignee_id": "ticket.agent_assignment_changed",
    "group_id": "ticket.group_assignment_changed",
    "requester_id": "ticket.requester_changed",
    "tags": "ticket.tags_changed",
    "external_id": "ticket.external_id_changed",
    "description": "ticket.description_changed",
    "due_at": "ticket.task_due_at_changed",
}
SUBSCRIBED_EVENTS = ("ticket.created", *FIELD_EVENTS.values(), "ticket.soft_deleted")
_ENUM_FIELDS = ("status", "priority", "type")
_ID_FIELDS = ("organization_id", "requester_id", "submitter_id", "assignee_id", "group_id")


def _id_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _enum_text(value: Any) -> str | None:
    return None if value is None else str(value).upper()


def ticket_detail(ticket: dict[str, Any]) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "actor_id": _id_text(ticket.get("submitter_id")),
        "brand_id": _id_text(ticket.get("brand_id")),
        "created_at": ticket.get("created_at"),
        "custom_status": _id_text(ticket.get("custom_status_id")),
        "description": ticket.get("description"),
        "external_id": _id_text(ticket.get("external_id")),
        "form_id": _id_text(ticket.get("ticket_form_id")),
        "id": str(ticket["id"]),
        "is_public": bool(ticket.get("is_public", True)),
        "subject": ticket.get("subject"),
        "tags": list(ticket.get("tags") or []),
        "updated_at": ticket.get("updated_at"),
        "via": {"channel": "web_service"},
    }
    for key in _ID_FIELDS:
        detail[key] = _id_text(ticket.get(key))
    for key in _ENUM_FIELDS:
        detail[key] = _enum_text(ticket.get(key))
    return dict(sorted(detail.items()))


def _event_value(key: str, value: Any) -> Any:
    if key in _ENUM_FIELDS:
        return _enum_text(value)
    if key in _ID_FIELDS:
        return _id_text(value)
    return value


def ticket_events(
    config: ZendeskSandboxConfig, action: str, ticket: dict[str, Any], changes: list[Change]
) -> list[dict[str, Any]]:
    """The envelopes one scenario action produces (one per changed field on update)."""
    sequence = str(uuid.uuid4())
    if action == "created":
        kinds: list[tuple[str, dict[str, Any]]] = [("ticket.created", {})]
    elif action == "deleted":
        kinds = [("ticket.soft_deleted", {})]
    else:
        kinds = [
            (
                FIELD_EVENTS.get(name, "ticket.custom_field_changed"),
                {"current": _event_value(name, current), "previous": _event_value(name, before)},
            )
            for name, before, current in changes
        ]
    detail = ticket_detail(ticket)
    now = iso(time.time())
    envelopes = []
    for position, (kind, event) in enumerate(kinds, start=1):
        event["meta"] = {"sequence": {"id": sequence, "position": position}}
        envelopes.append(
            {
                "type": EVENT_PREFIX + kind,
                "account_id": config.account_id,
                "id": str(uuid.uuid4()),
                "time": now,
                "zendesk_event_version": settings.ZENDESK_EVENT_VERSION,
                "subject": f"zen:ticket:{ticket['id']}",
                "detail": detail,
                "event": event,
            }
        )
    return envelopes


@dataclass
class Invocation:
    id: str
    event_id: str
    event_type: str
    body: bytes
    attempts: int = 0
    status: str = "pending"
    log: list[dict[str, Any]] = field(default_factory=list)


class WebhookDispatcher:
    """Sends invocations in the background; retries failures with exponential backoff up
    to `webhook_max_attempts`. `close()` stops the worker; nothing is left running."""

    def __init__(self, config: ZendeskSandboxConfig) -> None:
        self.config = config
        self._lock = threading.Condition()
        self._queue: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._invocations: dict[str, Invocation] = {}
        self._sent_order: list[str] = []
        self._attempt_log: list[dict[str, Any]] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = 0
        self._http = httpx.Client(timeout=config.webhook_timeout_s)

    # --- configuration and inspection ---

    def configure(self, url: str | None, secret: str | None) -> None:
        with self._lock:
            self.config.webhook_url = url
            if secret is not None:
                self.config.webhook_secret = secret

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._attempt_log]

    def invocations(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "id": inv.id,
                    "event_id": inv.event_id,
                    "event_type": inv.event_type,
                    "status": inv.status,
                    "attempts": inv.attempts,
                    "log": list(inv.log),
                }
                for inv in (self._invocations[i] for i in self._sent_order)
            ]

    def invocation(self, invocation_id: str) -> Invocation | None:
        with self._lock:
            return self._invocations.get(invocation_id)

    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + self._busy

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._invocations.clear()
            self._sent_order.clear()
            self._attempt_log.clear()

    # --- producing ---

    def enqueue(self, envelope: dict[str, Any]) -> str | None:
        if not self.config.webhook_url:
            return None
        body = json.dumps(envelope, separators=(",", ":")).encode("utf-8")
        invocation = Invocation(
            id=_ulid_like(), event_id=envelope["id"], event_type=envelope["type"], body=body
        )
        with self._lock:
            self._invocations[invocation.id] = invocation
            self._sent_order.append(invocation.id)
            self._schedule(invocation.id, 0.0)
        return invocation.id

    def redeliver(self, count: int, *, new_invocation: bool = False) -> list[str]:
        """Send the last `count` invocations again: the duplicates a receiver must absorb.
        By default as another delivery of the same invocation (same id and body)."""
        with self._lock:
            chosen = self._sent_order[-count:] if count > 0 else []
            ids = []
            for invocation_id in chosen:
                original = self._invocations[invocation_id]
                if new_invocation:
                    copy = Invocation(
                        _ulid_like(), original.event_id, original.event_type, original.body
                    )
                    self._invocations[copy.id] = copy
                    self._sent_order.append(copy.id)
                    invocation_id = copy.id
                else:
                    original.status = "pending"
                self._schedule(invocation_id, 0.0)
                ids.append(invocation_id)
            return ids

    def _schedule(self, invocation_id: str, delay_s: float) -> None:
        heapq.heappush(self._queue, (time.monotonic() + delay_s, next(self._order), invocation_id))
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="zendesk-sandbox-webhooks", daemon=True
            )
            self._thread.start()
        self._lock.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """True once nothing is queued or being sent (retries count as queued)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.02)
        return self.pending() == 0

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=self.config.webhook_timeout_s + 2)
        self._http.close()

    # --- the worker ---

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stopping:
                    if self._queue and self._queue[0][0] <= time.monotonic():
                        break
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._lock.wait(timeout=timeout)
                if self._stopping:
                    return
                _, _, invocation_id = heapq.heappop(self._queue)
                invocation = self._invocations.get(invocation_id)
                if invocation is None:
                    continue
                url, secret = self.config.webhook_url, self.config.webhook_secret
                invocation.attempts += 1
                attempt = invocation.attempts
                self._busy += 1
            try:
                entry = self._attempt(invocation, attempt, url, secret)
            finally:
                with self._lock:
                    self._busy -= 1
            with self._lock:
                self._attempt_log.append(entry)
                invocation.log.append(entry)
                if entry["ok"]:
                    invocation.status = "success"
                elif attempt < self.config.webhook_max_attempts:
                    invocation.status = "retrying"
                    delay = self.config.webhook_retry_base_s * 2 ** (attempt - 1)
                    self._schedule(invocation_id, delay * random.uniform(1.0, 1.25))
                else:
                    invocation.status = "terminated"

    def _attempt(
        self, invocation: Invocation, attempt: int, url: str | None, secret: str
    ) -> dict[str, Any]:
        timestamp = iso(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Zendesk Webhook",
            ACCOUNT_ID_HEADER: str(self.config.account_id),
            WEBHOOK_ID_HEADER: self.config.webhook_id,
            INVOCATION_ID_HEADER: invocation.id,
            SIGNATURE_HEADER: sign(secret, invocation.body, timestamp),
            TIMESTAMP_HEADER: timestamp,
        }
        entry: dict[str, Any] = {
            "invocation_id": invocation.id,
            "event_id": invocation.event_id,
            "event_type": invocation.event_type,
            "attempt": attempt,
            "url": url,
            "request_headers": headers,
            "payload": invocation.body.decode("utf-8"),
            "status_code": None,
            "response_headers": {},
            "response_body": "",
            "error": None,
            "ok": False,
            "completed_at": None,
        }
        if not url:
            entry["error"] = "no webhook URL configured"
        else:
            try:
                response = self._http.post(url, content=invocation.body, headers=headers)
                entry["status_code"] = response.status_code
                entry["response_headers"] = dict(response.headers)
                entry["response_body"] = response.text[:2000]
                entry["ok"] = 200 <= response.status_code < 300
            except httpx.HTTPError as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["completed_at"] = iso(time.time())
        return entry


_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid_like() -> str:
    """26 Crockford base-32 characters, time-ordered like Zendesk's ULID ids."""
    value = (int(time.time() * 1000) << 80) | random.getrandbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ULID_ALPHABET[digit])
    return "".join(reversed(chars))
