"""What the ledger says about the connector's state, told once for every reader: the
asset checks, `ml-connector status` and `ml-connector db quarantine` all count the
quarantine with `quarantine_groups`, so they cannot disagree. No Dagster here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import make_url

from connector_pipeline.staging import LedgerError, QuarantineItem, StagingStore, utcnow

EXAMPLE_KEYS = 3
RECENT_ERRORS = 10
# Ids, numbers and quoted values differ from entry to entry; the rest of a reason says why.
_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|\S*\d\S*")


def reason_class(reason: str) -> str:
    """A reason with what varies between entries (ids, numbers, quoted values) replaced by
    "…", so entries quarantined for the same cause count together."""
    first_line = reason.strip().splitlines()[0] if reason.strip() else "(no reason given)"
    return " ".join(_VARYING.sub("…", first_line).split())


@dataclass(frozen=True)
class QuarantineGroup:
    kind: str
    reason: str
    count: int
    examples: tuple[str, ...]
    example_reason: str


def quarantine_groups(items: Iterable[QuarantineItem]) -> list[QuarantineGroup]:
    """Open entries by kind and reason class, largest first, each with a few keys."""
    grouped: dict[tuple[str, str], list[QuarantineItem]] = {}
    for item in items:
        grouped.setdefault((item.kind, reason_class(item.reason)), []).append(item)
    groups = [
        QuarantineGroup(
            kind=kind,
            reason=reason,
            count=len(members),
            examples=tuple(m.key for m in members[:EXAMPLE_KEYS]),
            example_reason=members[0].reason,
        )
        for (kind, reason), members in grouped.items()
    ]
    return sorted(groups, key=lambda g: (-g.count, g.kind, g.reason))


def open_quarantine(
    store: StagingStore, kinds: Sequence[str] | None = None
) -> list[QuarantineItem]:
    if kinds is None:
        return store.quarantine_list()
    return [item for kind in kinds for item in store.quarantine_list(kind)]


def quarantine_markdown(groups: Sequence[QuarantineGroup]) -> str:
    """The groups as a markdown table (asset check and run metadata)."""
    lines = ["| kind | reason | open | example keys |", "|---|---|---:|---|"]
    for g in groups:
        reason = g.reason.replace("|", "\\|")
        lines.append(f"| {g.kind} | {reason} | {g.count} | {', '.join(g.examples)} |")
    return "\n".join(lines)


def reasons_line(groups: Sequence[QuarantineGroup]) -> str:
    """One line naming every reason with its count, for a check's description."""
    return "; ".join(f"{g.count} {g.kind}: {g.reason}" for g in groups)


def quarantine_metadata(store: StagingStore, kinds: Sequence[str]) -> dict[str, int | str]:
    """What an asset's materialization says about its quarantine after the run: how many
    entries of its kinds are open (the number its `quarantine_size` check reports and
    `ml-connector db quarantine` lists), and a markdown table of them by reason."""
    groups = quarantine_groups(open_quarantine(store, kinds))
    return {
        "quarantined": sum(g.count for g in groups),
        "quarantined_by_reason": quarantine_markdown(groups),
    }


def safe_url(url: str) -> str:
    """The ledger URL without its password."""
    return make_url(url).render_as_string(hide_password=True)


def age_text(then: datetime, now: datetime) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@dataclass
class LedgerStatus:
    url: str
    source: str
    revision: str | None
    tables: dict[str, int]
    cursors: dict[str, tuple[str, datetime]]
    inbox_pending: int
    quarantine: list[QuarantineGroup]
    errors: list[LedgerError]
    now: datetime = field(default_factory=utcnow)

    @property
    def quarantined(self) -> int:
        return sum(g.count for g in self.quarantine)


def ledger_status(store: StagingStore, url: str, source: str) -> LedgerStatus:
    return LedgerStatus(
        url=safe_url(url),
        source=source,
        revision=store.current_revision(),
        tables=store.table_counts(),
        cursors=store.cursors(),
        inbox_pending=store.inbox_backlog().pending,
        quarantine=quarantine_groups(store.quarantine_list()),
        errors=store.recent_errors(RECENT_ERRORS),
    )


@dataclass(frozen=True)
class AssetRun:
    """The latest successful materialization of an asset (read from Dagster by the CLI)."""

    asset: str
    run_id: str | None
    at: datetime | None


def render_status(status: LedgerStatus, runs: Sequence[AssetRun] | str | None) -> str:
    """The status as text; `runs` is None without a Dagster instance, or the reason it
    could not be read."""
    now = status.now
    out = [
        f"ledger       {status.url}",
        f"             (from {status.source}; revision {status.revision or 'none'})",
        "",
        "rows per table",
    ]
    out += [f"  {name:<22}{count:>10,}" for name, count in status.tables.items()]
    out += ["", f"webhook inbox: {status.inbox_pending:,} unprocessed", "", "cursors"]
    if not status.cursors:
        out.append("  (none yet: nothing has run against this ledger)")
    for name, (value, updated) in sorted(status.cursors.items()):
        out.append(f"  {name}  ({age_text(updated, now)} ago)")
        out.append(f"      {value}")
    out += ["", f"quarantine: {status.quarantined:,} open"]
    for g in status.quarantine:
        out.append(f"  {g.count:>6}  {g.kind:<18}{g.reason}")
        out.append(f"          e.g. {', '.join(g.examples)}")
    out += ["", "last errors"]
    if not status.errors:
        out.append("  (none)")
    for e in status.errors:
        when = f"{age_text(e.at, now)} ago" if e.at else "?"
        out.append(f"  {e.table}:{e.key}  ({when})  {e.error.splitlines()[0][:160]}")
    out += ["", "last successful materialization per asset"]
    if isinstance(runs, str):
        out.append(f"  (could not read the Dagster instance: {runs})")
    elif runs is None:
        out.append("  (no Dagster instance found: set DAGSTER_HOME)")
    else:
        for r in runs:
            if r.at is None:
                out.append(f"  {r.asset:<24}never")
            else:
                run = (r.run_id or "")[:8]
                out.append(f"  {r.asset:<24}{age_text(r.at, now)} ago (run {run})")
    return "\n".join(out)
