"""The mapping file: how records move between the two systems (organization and
ticket_record sections). Parsing only; reading the file is the caller's business."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml

from connector_pipeline.sync.tickets import TicketRecordMapping
from connector_pipeline.sync.vendors import OrganizationMapping

DEFAULT_MAPPING_RESOURCE = "default_mapping.yaml"


@dataclass(frozen=True)
class ConnectorMapping:
    organization: OrganizationMapping
    ticket_record: TicketRecordMapping

    @classmethod
    def from_yaml(cls, text: str) -> ConnectorMapping:
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError("the mapping file must be a YAML mapping")
        unknown = sorted(set(data) - {"organization", "ticket_record"})
        if unknown:
            raise ValueError(f"unknown sections in the mapping file: {', '.join(unknown)}")
        return cls(
            organization=OrganizationMapping.from_dict(data.get("organization") or {}),
            ticket_record=TicketRecordMapping.from_dict(data.get("ticket_record") or {}),
        )


def default_mapping_text() -> str:
    """The documented default mapping that ships with the package."""
    return resources.files("connector_pipeline.sync").joinpath(DEFAULT_MAPPING_RESOURCE).read_text()
