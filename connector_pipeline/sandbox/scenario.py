"""Both sandboxes together: start them, seed related data, and generate live traffic.

Used by `ml-connector sandbox`, `ml-connector demo`, the end-to-end tests and the
benchmarks. Seeding goes through each sandbox's scenario API (`/_sandbox/...`), exactly as
a test or a user would drive it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from connector_pipeline.sandbox import intacct as intacct_sandbox
from connector_pipeline.sandbox import zendesk as zendesk_sandbox
from connector_pipeline.servers import serve_in_thread

log = logging.getLogger(__name__)


@dataclass
class RunningSandboxes:
    intacct_url: str
    zendesk_url: str
    env: dict[str, str]
    intacct_app: Any
    zendesk_app: Any

    def intacct(self) -> httpx.Client:
        return httpx.Client(base_url=self.intacct_url, timeout=60)

    def zendesk(self) -> httpx.Client:
        return httpx.Client(base_url=self.zendesk_url, timeout=60)


@contextmanager
def run_sandboxes(
    *,
    host: str = "127.0.0.1",
    intacct_port: int = 0,
    zendesk_port: int = 0,
    intacct_config: intacct_sandbox.IntacctSandboxConfig | None = None,
    zendesk_config: zendesk_sandbox.ZendeskSandboxConfig | None = None,
) -> Iterator[RunningSandboxes]:
    """Run both sandboxes in this process (port 0: an ephemeral port)."""
    intacct_config = intacct_config or intacct_sandbox.IntacctSandboxConfig()
    zendesk_config = zendesk_config or zendesk_sandbox.ZendeskSandboxConfig()
    intacct_app = intacct_sandbox.create_app(intacct_config)
    zendesk_app = zendesk_sandbox.create_app(zendesk_config)
    with (
        serve_in_thread(intacct_app, host=host, port=intacct_port) as intacct,
        serve_in_thread(zendesk_app, host=host, port=zendesk_port) as zendesk,
    ):
        env = {
            **intacct_sandbox.sandbox_env(intacct.url, intacct_config),
            **zendesk_sandbox.sandbox_env(zendesk.url, zendesk_config),
        }
        yield RunningSandboxes(intacct.url, zendesk.url, env, intacct_app, zendesk_app)


def seed_vendors(
    sandboxes: RunningSandboxes,
    *,
    vendors: int,
    preexisting_fraction: float = 0.0,
    unlinked_organizations: int = 0,
    seed: int = 42,
) -> dict[str, Any]:
    """Seed Intacct with `vendors` vendors. With `preexisting_fraction`, that share of
    them already has an organization in Zendesk (an account set up by hand), which the
    connector must find and link rather than duplicate; `unlinked_organizations` adds
    organizations no vendor stands for, whose tickets stay unmatched."""
    rng = random.Random(seed)
    with sandboxes.intacct() as intacct, sandboxes.zendesk() as zendesk:
        intacct.post("/_sandbox/seed", json={"vendors": vendors, "seed": seed}).raise_for_status()
        records = intacct.get("/_sandbox/records/VENDOR").raise_for_status().json()
        chosen = [r for r in records if rng.random() < preexisting_fraction]
        # Zendesk names are unique, so a hand-made account can't hold two organizations
        # named alike: the second one carries its vendor id.
        organizations, taken = [], set()
        for r in chosen:
            name = " ".join(str(r["NAME"]).split())
            if name.casefold() in taken:
                name = f"{name} ({r['VENDORID']})"
            taken.add(name.casefold())
            organizations.append({"name": name, "external_id": r["VENDORID"]})
        organizations += [
            {"name": f"Walk-in customer {i + 1}", "external_id": None}
            for i in range(unlinked_organizations)
        ]
        if organizations:
            zendesk.post(
                "/_sandbox/seed", json={"organizations": organizations, "seed": seed}
            ).raise_for_status()
    return {
        "vendors": len(records),
        "preexisting_organizations": len(chosen),
        "unlinked_organizations": unlinked_organizations,
    }


def seed_tickets(
    sandboxes: RunningSandboxes, *, tickets: int, days: int = 30, seed: int = 42
) -> dict[str, Any]:
    """Seed `tickets` tickets spread over the last `days` days and over every organization
    Zendesk holds now."""
    with sandboxes.zendesk() as zendesk:
        response = zendesk.post(
            "/_sandbox/seed", json={"tickets": tickets, "days": days, "seed": seed}
        ).raise_for_status()
        return dict(response.json())


class LiveTraffic(threading.Thread):
    """Creates, updates and solves tickets on the Zendesk sandbox every few seconds, so
    webhook deliveries flow while a user watches (the demo). With `intacct_url`, every
    `vendor_every`-th tick also edits a vendor in the Intacct sandbox, whose outbound webhook
    then wakes the vendor sync."""

    def __init__(
        self,
        zendesk_url: str,
        *,
        interval_s: float = 10.0,
        seed: int = 7,
        intacct_url: str | None = None,
        vendor_every: int = 3,
    ) -> None:
        super().__init__(daemon=True, name="sandbox-live-traffic")
        self.zendesk_url = zendesk_url
        self.intacct_url = intacct_url
        self.vendor_every = max(1, vendor_every)
        self.interval_s = interval_s
        self.rng = random.Random(seed)
        self.stopped = threading.Event()
        self.ticks = 0

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        with httpx.Client(base_url=self.zendesk_url, timeout=30) as client:
            while not self.stopped.wait(self.interval_s):
                try:
                    self._tick(client)
                    self.ticks += 1
                    if self.intacct_url and self.ticks % self.vendor_every == 0:
                        with httpx.Client(base_url=self.intacct_url, timeout=30) as intacct:
                            intacct.post(
                                "/_sandbox/vendors/modify", json={"count": 1}
                            ).raise_for_status()
                except httpx.HTTPError as exc:
                    log.warning("live traffic: %s", exc)

    def _tick(self, client: httpx.Client) -> None:
        organizations = client.get("/_sandbox/organizations").raise_for_status().json()
        tickets = client.get("/_sandbox/tickets").raise_for_status().json()
        open_tickets = [t for t in tickets if t.get("status") in ("new", "open", "pending")]
        action = self.rng.random()
        if action < 0.5 or not open_tickets:
            org = self.rng.choice(organizations) if organizations else None
            client.post(
                "/_sandbox/tickets",
                json={
                    "subject": f"Question about invoice {self.rng.randint(1000, 9999)}",
                    "organization_id": org["id"] if org else None,
                    "priority": self.rng.choice(["low", "normal", "high"]),
                },
            ).raise_for_status()
        elif action < 0.8:
            ticket = self.rng.choice(open_tickets)
            client.patch(
                f"/_sandbox/tickets/{ticket['id']}", json={"status": "pending"}
            ).raise_for_status()
        else:
            ticket = self.rng.choice(open_tickets)
            client.post(f"/_sandbox/tickets/{ticket['id']}/solve").raise_for_status()
