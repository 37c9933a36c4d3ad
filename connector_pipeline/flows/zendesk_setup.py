"""`ml-connector setup zendesk`: create the organization fields the mapping names, once.
Idempotent: a field whose key exists is left alone (and reported if it can't be used)."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector_pipeline.flows.ports import OrganizationFieldAdmin
from connector_pipeline.sync.standing import FieldPlan, StandingMapping, plan_fields


@dataclass
class SetupResult:
    plan: FieldPlan
    created: list[str] = field(default_factory=list)
    dry_run: bool = False
    api_calls: int = 0

    @property
    def ok(self) -> bool:
        return not self.plan.unusable


def setup_organization_fields(
    zendesk: OrganizationFieldAdmin, mapping: StandingMapping, *, dry_run: bool = False
) -> SetupResult:
    start = zendesk.http_calls
    plan = plan_fields(mapping, zendesk.list_organization_fields())
    result = SetupResult(plan, dry_run=dry_run)
    if not dry_run:
        for body in plan.create:
            result.created.append(str(zendesk.create_organization_field(body)["key"]))
    result.api_calls = zendesk.http_calls - start
    return result
