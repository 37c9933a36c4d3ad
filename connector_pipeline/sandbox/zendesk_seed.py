"""Deterministic seed data for the sandbox Zendesk: the same request and seed give the same
organizations and tickets (times are relative to `now`)."""

from __future__ import annotations

import random
import time
from typing import Any

from pydantic import BaseModel

from connector_pipeline.sandbox.zendesk_people import FIRST_GROUP_ID, GROUP_NAMES
from connector_pipeline.sandbox.zendesk_state import (
    FIRST_USER_ID,
    TICKET_PRIORITIES,
    TICKET_TYPES,
    SandboxState,
)

_ADJECTIVES = (
    "Acme", "Northwind", "Blue", "Granite", "Summit", "Harbor", "Maple", "Silver", "Pioneer",
    "Cedar", "Atlas", "Beacon", "Crescent", "Delta", "Evergreen", "Falcon",
)  # fmt: skip
_NOUNS = (
    "Supplies", "Logistics", "Consulting", "Foods", "Freight", "Metals", "Software", "Paper",
    "Electric", "Textiles", "Labs", "Works", "Partners", "Trading", "Systems", "Holdings",
)  # fmt: skip
_SUBJECTS = (
    "Invoice does not match purchase order",
    "Payment not received",
    "Update remittance address",
    "Duplicate charge on statement",
    "Request for W-9 form",
    "Shipment delayed",
    "Credit memo question",
    "Change of bank details",
    "Late fee dispute",
    "Portal login problem",
)
# Weighted so a seeded account looks like a live one: mostly open work, some finished.
_STATUS_WEIGHTS = (
    ("new", 2),
    ("open", 4),
    ("pending", 2),
    ("hold", 1),
    ("solved", 3),
    ("closed", 2),
)
_DAY_S = 86_400.0
# Some tickets have no group yet, as in a live account.
_GROUPS = (None, *range(FIRST_GROUP_ID, FIRST_GROUP_ID + len(GROUP_NAMES)))


class SeedRequest(BaseModel):
    organizations: int | list[dict[str, Any]] = 0
    tickets: int = 0
    days: float = 30.0
    seed: int | None = None
    organization_ids: list[int] | None = None
    unassigned_fraction: float = 0.1
    now: float | None = None


def seed(state: SandboxState, request: SeedRequest) -> dict[str, Any]:
    rng = random.Random(state.config.seed if request.seed is None else request.seed)
    created_orgs: list[int] = []
    if isinstance(request.organizations, int):
        start = len(state.organizations)
        specs = [
            {
                "name": f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} {start + i + 1:05d}",
                "external_id": f"V{start + i + 1:05d}",
            }
            for i in range(request.organizations)
        ]
    else:
        specs = list(request.organizations)
    with state.lock:
        for spec in specs:
            created_orgs.append(state.create_organization(spec, scenario=True)["id"])
        pool = request.organization_ids or sorted(state.organizations)
        now = request.now if request.now is not None else state.clock()
        newest = now - max(state.config.export_lag_s, 0.0) - 1.0
        statuses = [s for s, _ in _STATUS_WEIGHTS]
        weights = [w for _, w in _STATUS_WEIGHTS]
        ticket_ids = []
        for _ in range(request.tickets):
            created = newest - rng.uniform(0, request.days * _DAY_S)
            updated = min(created + rng.uniform(0, 3 * _DAY_S), newest)
            assigned = pool and rng.random() >= request.unassigned_fraction
            fields: dict[str, Any] = {
                "subject": rng.choice(_SUBJECTS),
                "status": rng.choices(statuses, weights)[0],
                "priority": rng.choice((None, *TICKET_PRIORITIES)),
                "type": rng.choice((None, *TICKET_TYPES)),
                "organization_id": rng.choice(pool) if assigned else None,
                "requester_id": FIRST_USER_ID + rng.randrange(1, 500),
                "assignee_id": rng.choice((None, FIRST_USER_ID)),
                "tags": sorted(rng.sample(("billing", "ap", "vendor", "urgent", "w9"), 2)),
            }
            # From the requester, not the generator, so a seed keeps giving the tickets it
            # gave before groups existed.
            fields["group_id"] = _GROUPS[fields["requester_id"] % len(_GROUPS)]
            ticket = state.new_ticket(fields, at=updated, created=created)
            ticket_ids.append(ticket["id"])
        if ticket_ids:
            state.scenario_writes["ticket"]["seed"] += len(ticket_ids)
    return {
        "organizations": len(created_orgs),
        "organization_ids": created_orgs,
        "tickets": len(ticket_ids),
        "ticket_ids": ticket_ids,
        "seeded_at": time.time(),
    }
