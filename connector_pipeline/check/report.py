"""Printing `ml-connector check` rows: a table for people, JSON for automation, and the
scrub that keeps every secret out of both."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace

from connector_pipeline import settings
from connector_pipeline.check.rows import CheckRow

SECRET_VARIABLES = (
    settings.ENV_INTACCT_SENDER_PASSWORD,
    settings.ENV_INTACCT_USER_PASSWORD,
    settings.ENV_ZENDESK_API_TOKEN,
    settings.ENV_ZENDESK_OAUTH_TOKEN,
    settings.ENV_ZENDESK_OAUTH_REFRESH_TOKEN,
    settings.ENV_ZENDESK_OAUTH_CLIENT_SECRET,
    settings.ENV_ZENDESK_WEBHOOK_SECRETS,
    settings.ENV_INTACCT_WEBHOOK_KEY,
)
_MIN_SECRET_CHARS = 4  # shorter values would blank out ordinary words


def scrub(rows: Sequence[CheckRow], environ: Mapping[str, str]) -> list[CheckRow]:
    """The rows with every secret value (and each webhook secret) replaced by ***."""
    secrets: set[str] = set()
    for name in SECRET_VARIABLES:
        value = environ.get(name, "")
        secrets.update(part for part in (value, *value.split(",")) if part)
    ordered = sorted((s for s in secrets if len(s) >= _MIN_SECRET_CHARS), key=len, reverse=True)

    def clean(text: str) -> str:
        for secret in ordered:
            text = text.replace(secret, "***")
        return text

    return [replace(row, found=clean(row.found), fix=clean(row.fix)) for row in rows]


def failed_any(rows: Sequence[CheckRow]) -> bool:
    return any(row.status == "fail" for row in rows)


def as_json(rows: Sequence[CheckRow]) -> str:
    return json.dumps(
        {"ok": not failed_any(rows), "checks": [row.as_dict() for row in rows]}, indent=2
    )


def as_table(rows: Sequence[CheckRow]) -> str:
    width_system = max((len(r.system) for r in rows), default=0)
    width_check = max((len(r.check) for r in rows), default=0)
    lines = []
    for row in rows:
        lead = f"{row.status.upper():<4}  {row.system:<{width_system}}  {row.check:<{width_check}}"
        lines.append(f"{lead}  {row.found}")
        if row.fix and row.status in ("fail", "warn"):
            lines.append(f"{'':<{len(lead)}}  fix: {row.fix}")
    counts = {s: sum(r.status == s for r in rows) for s in ("pass", "warn", "fail", "skip")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines.append("")
    lines.append(f"{summary}: {'FAILED' if failed_any(rows) else 'ready'}")
    return "\n".join(lines)
