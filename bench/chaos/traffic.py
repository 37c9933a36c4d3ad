"""What goes on around the runs during a chaos session, each a thread driven through the
sandboxes' scenario APIs or the receiver's public endpoint:

- `Traffic`: tickets created, retitled, moved between statuses and solved in Zendesk;
  vendors modified, deactivated and added in Intacct;
- `SessionInvalidator`: every Intacct session dropped every N seconds;
- `WebhookForger`: duplicates of real deliveries (the sandbox's own redelivery), and
  forged (wrong secret) and stale (signature an hour old) copies of real deliveries with
  new ids and a tell-tale subject, posted straight to the receiver.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from connector_pipeline.zendesk.webhooks import (
    INVOCATION_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

log = logging.getLogger(__name__)

FORGED_SECRET = "not-the-webhook-secret"
STALE_AGE_S = 3600.0
FORGED_SUBJECT = "FORGED delivery"
STALE_SUBJECT = "STALE delivery"
OPEN_STATUSES = ("new", "open", "pending")


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class Loop(threading.Thread):
    """A thread that calls `tick` every `interval_s` until stopped; an HTTP error in one
    tick is counted and the loop goes on (the sandboxes are never faulted under
    /_sandbox/, but the receiver may be busy)."""

    def __init__(self, name: str, interval_s: float, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.interval_s = interval_s
        self.stopped = stop
        self.counts: Counter[str] = Counter()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                self.tick()
            except httpx.HTTPError as exc:
                self.counts["http_errors"] += 1
                log.warning("%s: %s", self.name, exc)

    def tick(self) -> None:
        raise NotImplementedError


class Traffic(Loop):
    def __init__(
        self,
        intacct_url: str,
        zendesk_url: str,
        stop: threading.Event,
        *,
        interval_s: float,
        vendor_every: int = 6,
        seed: int = 7,
    ) -> None:
        super().__init__("chaos-traffic", interval_s, stop)
        self.intacct = httpx.Client(base_url=intacct_url, timeout=30)
        self.zendesk = httpx.Client(base_url=zendesk_url, timeout=30)
        self.rng = random.Random(seed)
        self.vendor_every = vendor_every
        self.ticks = 0

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.intacct.close()
            self.zendesk.close()

    def tick(self) -> None:
        self.ticks += 1
        self._ticket_change()
        if self.ticks % self.vendor_every == 0:
            self._vendor_change()

    def _ticket_change(self) -> None:
        rng = self.rng
        tickets = self.zendesk.get("/_sandbox/tickets").raise_for_status().json()
        open_tickets = [t for t in tickets if t.get("status") in OPEN_STATUSES]
        action = rng.random()
        if action < 0.35 or not open_tickets:
            orgs = self.zendesk.get("/_sandbox/organizations").raise_for_status().json()
            org = rng.choice(orgs) if orgs else None
            self.zendesk.post(
                "/_sandbox/tickets",
                json={
                    "subject": f"Invoice question {rng.randint(1000, 99999)}",
                    "organization_id": org["id"] if org else None,
                    "priority": rng.choice(["low", "normal", "high"]),
                },
            ).raise_for_status()
            self.counts["ticket_created"] += 1
            return
        ticket = rng.choice(open_tickets)
        if action < 0.6:
            change: dict[str, Any] = {"subject": f"Updated: {rng.randint(1000, 99999)}"}
            self.counts["ticket_retitled"] += 1
        elif action < 0.85:
            change = {"status": rng.choice([s for s in OPEN_STATUSES if s != ticket["status"]])}
            self.counts["ticket_status_changed"] += 1
        else:
            self.zendesk.post(f"/_sandbox/tickets/{ticket['id']}/solve").raise_for_status()
            self.counts["ticket_solved"] += 1
            return
        self.zendesk.patch(f"/_sandbox/tickets/{ticket['id']}", json=change).raise_for_status()

    def _vendor_change(self) -> None:
        action = self.rng.random()
        if action < 0.7:
            body = {"count": self.rng.randint(1, 3)}
            done = self.intacct.post("/_sandbox/vendors/modify", json=body).raise_for_status()
            self.counts["vendor_modified"] += len(done.json()["modified"])
        elif action < 0.85:
            done = self.intacct.post("/_sandbox/vendors/deactivate", json={"count": 1})
            self.counts["vendor_deactivated"] += len(done.raise_for_status().json()["deactivated"])
        else:
            vendor_id = f"VC{uuid.uuid4().hex[:8].upper()}"
            self.intacct.post(
                "/_sandbox/vendors",
                json={"vendors": [{"VENDORID": vendor_id, "NAME": f"Chaos vendor {vendor_id}"}]},
            ).raise_for_status()
            self.counts["vendor_added"] += 1


class SessionInvalidator(Loop):
    def __init__(self, intacct_url: str, stop: threading.Event, *, interval_s: float) -> None:
        super().__init__("chaos-sessions", interval_s, stop)
        self.intacct_url = intacct_url

    def tick(self) -> None:
        response = httpx.post(f"{self.intacct_url}/_sandbox/sessions/invalidate", timeout=30)
        self.counts["invalidations"] += 1
        self.counts["sessions_dropped"] += int(response.raise_for_status().json()["invalidated"])


class WebhookForger(Loop):
    def __init__(
        self,
        zendesk_url: str,
        receiver_url: str,
        secret: str,
        stop: threading.Event,
        *,
        interval_s: float,
        seed: int = 11,
    ) -> None:
        super().__init__("chaos-webhooks", interval_s, stop)
        self.zendesk_url = zendesk_url
        self.receiver_url = receiver_url
        self.secret = secret
        self.rng = random.Random(seed)

    def tick(self) -> None:
        with httpx.Client(timeout=30) as http:
            # Duplicates: the same invocation again, and the same event as a new invocation.
            redeliver = f"{self.zendesk_url}/_sandbox/webhook/redeliver"
            sent = http.post(redeliver, json={"count": 2}).raise_for_status().json()
            self.counts["duplicates_requested"] += len(sent["invocation_ids"])
            sent = http.post(redeliver, json={"count": 1, "new_invocation": True})
            self.counts["duplicates_requested"] += len(
                sent.raise_for_status().json()["invocation_ids"]
            )
            deliveries = http.get(f"{self.zendesk_url}/_sandbox/webhook/deliveries")
            real = [d for d in deliveries.raise_for_status().json() if d.get("ok")]
            if not real:
                return
            for kind in ("forged", "stale"):
                self._post_copy(http, self.rng.choice(real[-50:]), kind)

    def _post_copy(self, http: httpx.Client, delivery: dict[str, Any], kind: str) -> None:
        envelope = json.loads(delivery["payload"])
        envelope["id"] = str(uuid.uuid4())
        detail = envelope.get("detail") or {}
        detail["subject"] = (
            f"{FORGED_SUBJECT if kind == 'forged' else STALE_SUBJECT} {uuid.uuid4()}"
        )
        envelope["detail"] = detail
        body = json.dumps(envelope, separators=(",", ":")).encode()
        if kind == "forged":
            timestamp = _iso(time.time())
            signature = sign(FORGED_SECRET, body, timestamp)
        else:
            timestamp = _iso(time.time() - STALE_AGE_S)
            signature = sign(self.secret, body, timestamp)
        headers = {
            k: v
            for k, v in delivery["request_headers"].items()
            if k not in (SIGNATURE_HEADER, TIMESTAMP_HEADER, INVOCATION_ID_HEADER)
        }
        headers[INVOCATION_ID_HEADER] = uuid.uuid4().hex.upper()[:26]
        headers[SIGNATURE_HEADER] = signature
        headers[TIMESTAMP_HEADER] = timestamp
        response = http.post(self.receiver_url, content=body, headers=headers)
        self.counts[f"{kind}_sent"] += 1
        if 200 <= response.status_code < 300:
            self.counts[f"{kind}_accepted_by_receiver"] += 1
        elif response.status_code == 401:
            self.counts[f"{kind}_refused"] += 1
        else:
            self.counts[f"{kind}_other_{response.status_code}"] += 1
