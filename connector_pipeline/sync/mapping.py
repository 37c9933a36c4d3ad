"""The mapping file: how records move between the two systems (organization and
ticket_record sections). Parsing only; reading the file is the caller's business."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from connector_pipeline.sync.standing import StandingMapping
from connector_pipeline.sync.tickets import TicketRecordMapping
from connector_pipeline.sync.vendors import OrganizationMapping


@dataclass(frozen=True)
class ConnectorMapping:
    organization: OrganizationMapping
    ticket_record: TicketRecordMapping
    standing: StandingMapping = field(default_factory=lambda: StandingMapping(enabled=False))

    @classmethod
    def from_yaml(cls, text: str) -> ConnectorMapping:
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError("the mapping file must be a YAML mapping")
        unknown = sorted(set(data) - {"organization", "ticket_record", "standing"})
        if unknown:
            raise ValueError(f"unknown sections in the mapping file: {', '.join(unknown)}")
        mapping = cls(
            organization=OrganizationMapping.from_dict(data.get("organization") or {}),
            ticket_record=TicketRecordMapping.from_dict(data.get("ticket_record") or {}),
            # No standing section: nothing is published (files written before it existed).
            standing=StandingMapping.from_dict(data.get("standing") or {"enabled": False}),
        )
        # Two writers of one organization field would overwrite each other on every run.
        shared = set(mapping.organization.organization_fields) & set(
            mapping.standing.fields.values() if mapping.standing.enabled else ()
        )
        if shared:
            raise ValueError(
                "organization.organization_fields and standing.fields both write "
                f"{', '.join(sorted(shared))}"
            )
        return mapping
