"""One row of `ml-connector check`: what was checked, the verdict, what was found and, for
a failure, what to do about it. Rows carry no secrets (see `report.scrub`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["pass", "fail", "warn", "skip"]


@dataclass(frozen=True)
class CheckRow:
    system: str  # intacct | zendesk | ledger | dagster | configuration
    check: str
    status: Status
    found: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed(system: str, check: str, found: str) -> CheckRow:
    return CheckRow(system, check, "pass", found)


def failed(system: str, check: str, found: str, fix: str) -> CheckRow:
    return CheckRow(system, check, "fail", found, fix)


def warned(system: str, check: str, found: str, fix: str = "") -> CheckRow:
    return CheckRow(system, check, "warn", found, fix)


def skipped(system: str, check: str, why: str) -> CheckRow:
    """A check that could not run because an earlier one failed."""
    return CheckRow(system, check, "skip", why)
