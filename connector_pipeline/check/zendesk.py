"""`ml-connector check`, Zendesk rows: authentication, the user's role, incremental export
access, permission to write organizations, the mapped organization fields, the webhook
signing secret and (when the receiver's URL is given) a webhook pointing at it.

Reads only: write permission is judged from the role, never by writing. At most one
incremental-export call (that endpoint allows 10 a minute)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from connector_pipeline import settings
from connector_pipeline.check.rows import CheckRow, failed, passed, skipped, warned
from connector_pipeline.sync.standing import StandingMapping, plan_fields
from connector_pipeline.sync.vendors import OrganizationMapping
from connector_pipeline.zendesk import ZendeskAuthError, ZendeskClient, ZendeskError

SYSTEM = "zendesk"
AUTH = "authentication"
ROLE = "user role"
EXPORT = "incremental export access"
WRITE = "permission to write organizations"
FIELDS = "organization fields"
STANDING = "standing organization fields"
SECRET = "webhook signing secret"
WEBHOOK = "webhook to the receiver"

ADMIN_FIX = (
    "make the API user an admin: Admin Center > People > Team > Team members > (the user) > "
    "Role: Admin"
)
# Organization field types a rendered template (text) can fill; others need care.
TEXT_TYPES = {"text", "textarea", "regexp", "tagger", "dropdown"}
CONVERTED_TYPES = {"integer", "decimal", "date", "checkbox"}


def check_zendesk(
    environ: Mapping[str, str],
    organizations: OrganizationMapping,
    *,
    receiver_url: str | None = None,
    standing: StandingMapping | None = None,
    **client_options: Any,
) -> list[CheckRow]:
    try:
        client = ZendeskClient.from_env(environ, **client_options)
    except ValueError as exc:
        return [
            failed(
                SYSTEM,
                "configuration",
                str(exc),
                f"set {settings.ENV_ZENDESK_SUBDOMAIN} to the account's subdomain (or an https "
                f"{settings.ENV_ZENDESK_BASE_URL})",
            )
        ]
    with client:
        try:
            me = client.show_me()
        except ZendeskAuthError as exc:
            return [
                failed(SYSTEM, AUTH, str(exc), _auth_fix()),
                *(skipped(SYSTEM, c, "needs authentication") for c in (ROLE, EXPORT, WRITE)),
                *(skipped(SYSTEM, c, "needs authentication") for c in (FIELDS, WEBHOOK)),
                _secret_row(environ),
            ]
        except ZendeskError as exc:
            return [failed(SYSTEM, "API reachable", str(exc), _base_fix()), _secret_row(environ)]
        if not me.get("id"):
            # Zendesk answers users/me with an anonymous user when it cannot authenticate.
            return [
                failed(SYSTEM, AUTH, "Zendesk treated the request as anonymous", _auth_fix()),
                *(skipped(SYSTEM, c, "needs authentication") for c in (ROLE, EXPORT, WRITE)),
                *(skipped(SYSTEM, c, "needs authentication") for c in (FIELDS, WEBHOOK)),
                _secret_row(environ),
            ]
        role = str(me.get("role") or "unknown")
        who = f"{me.get('email') or me.get('name') or me.get('id')}"
        rows = [passed(SYSTEM, AUTH, f"signed in as {who} on {client.base_url}")]
        admin = role == "admin"
        if admin:
            rows.append(passed(SYSTEM, ROLE, "admin"))
        else:
            rows.append(
                failed(
                    SYSTEM,
                    ROLE,
                    f"{role}: incremental exports, organization search and webhooks need an admin",
                    ADMIN_FIX,
                )
            )
        rows.append(_export_row(client))
        if admin:
            rows.append(passed(SYSTEM, WRITE, "admins may create and update organizations"))
        else:
            rows.append(failed(SYSTEM, WRITE, f"a {role} cannot manage organizations", ADMIN_FIX))
        rows.append(_fields_row(client, organizations))
        if standing is not None and standing.enabled:
            rows.append(_standing_row(client, standing))
        rows.append(_secret_row(environ))
        if receiver_url:
            rows.append(receiver_webhook_row(client, receiver_url))
        return rows


def _standing_row(client: ZendeskClient, standing: StandingMapping) -> CheckRow:
    """The organization fields the mapping's standing section names: present, with the
    right type and, for the band, every option (Zendesk drops a value not among them)."""
    try:
        plan = plan_fields(standing, client.list_organization_fields())
    except ZendeskError as exc:
        return failed(SYSTEM, STANDING, str(exc), ADMIN_FIX)
    if plan.create or plan.unusable:
        found = "; ".join(
            part
            for part in (
                f"missing: {', '.join(f['key'] for f in plan.create)}" if plan.create else "",
                *(f"{key}: {why}" for key, why in plan.unusable),
            )
            if part
        )
        fix = "run `ml-connector setup zendesk` (it creates the missing fields)"
        if plan.unusable:
            fix += "; fix or rename the unusable ones, or change standing.fields in the mapping"
        return failed(SYSTEM, STANDING, found, fix)
    return passed(SYSTEM, STANDING, f"{len(plan.present)} standing fields exist")


def _auth_fix() -> str:
    return (
        f"check {settings.ENV_ZENDESK_EMAIL} and {settings.ENV_ZENDESK_API_TOKEN} (Admin Center "
        "> Apps and integrations > APIs > Zendesk API: token access on, an active token), or "
        f"{settings.ENV_ZENDESK_OAUTH_TOKEN}"
    )


def _base_fix() -> str:
    return (
        f"check {settings.ENV_ZENDESK_SUBDOMAIN} (or {settings.ENV_ZENDESK_BASE_URL}) and the "
        "network path to Zendesk"
    )


def _export_row(client: ZendeskClient) -> CheckRow:
    # An hour back: start_time must be at least a minute in the past.
    start = int(time.time()) - 3600
    try:
        page = next(client.iter_ticket_export(start_time=start, per_page=1))
    except ZendeskAuthError as exc:
        return failed(SYSTEM, EXPORT, str(exc), ADMIN_FIX)
    except ZendeskError as exc:
        return failed(SYSTEM, EXPORT, str(exc), _base_fix())
    return passed(SYSTEM, EXPORT, f"allowed ({page.received} ticket(s) changed in the last hour)")


FIELDS_FIX = (
    "create or activate them with these keys in Admin Center > People > Configuration "
    "> Organization fields (text, multi-line, number, decimal, date, checkbox, "
    "drop-down or regex), or change organization.organization_fields in the mapping file"
)


def _fields_row(client: ZendeskClient, organizations: OrganizationMapping) -> CheckRow:
    wanted = sorted(organizations.organization_fields)
    if not wanted:
        return passed(SYSTEM, FIELDS, "the mapping fills no organization fields")
    try:
        fields = {str(f.get("key")): f for f in client.list_organization_fields()}
    except ZendeskError as exc:
        return failed(SYSTEM, FIELDS, str(exc), ADMIN_FIX)
    problems = _field_problems(wanted, fields)
    if problems:
        return failed(SYSTEM, FIELDS, problems, FIELDS_FIX)
    converted = [_typed(key, fields) for key in wanted if _type(key, fields) in CONVERTED_TYPES]
    if converted:
        return warned(
            SYSTEM,
            FIELDS,
            f"{len(wanted)} mapped fields exist; {', '.join(converted)} must receive values "
            "Zendesk accepts for that type",
        )
    return passed(SYSTEM, FIELDS, f"{len(wanted)} mapped fields exist as text fields")


def _type(key: str, fields: Mapping[str, Mapping[str, Any]]) -> str:
    return str(fields[key].get("type"))


def _typed(key: str, fields: Mapping[str, Mapping[str, Any]]) -> str:
    return f"{key} ({_type(key, fields)})"


def _field_problems(wanted: list[str], fields: Mapping[str, Mapping[str, Any]]) -> str:
    """Missing, inactive and unfillable mapped fields, in one line ("" when none)."""
    present = [key for key in wanted if key in fields]
    groups = (
        ("missing", [key for key in wanted if key not in fields]),
        ("inactive", [key for key in present if fields[key].get("active") is False]),
        (
            "type a template cannot fill",
            [
                _typed(key, fields)
                for key in present
                if _type(key, fields) not in TEXT_TYPES | CONVERTED_TYPES
            ],
        ),
    )
    return "; ".join(f"{label}: {', '.join(keys)}" for label, keys in groups if keys)


def _secret_row(environ: Mapping[str, str]) -> CheckRow:
    secrets = [s for s in environ.get(settings.ENV_ZENDESK_WEBHOOK_SECRETS, "").split(",") if s]
    if secrets:
        return passed(SYSTEM, SECRET, f"{len(secrets)} signing secret(s) set")
    return warned(
        SYSTEM,
        SECRET,
        f"{settings.ENV_ZENDESK_WEBHOOK_SECRETS} is not set: the webhook receiver refuses every "
        "delivery (polling still works)",
        f"copy the webhook's signing secret (Admin Center > Apps and integrations > Webhooks > "
        f"the webhook > Reveal secret) into {settings.ENV_ZENDESK_WEBHOOK_SECRETS}",
    )


def receiver_webhook_row(client: ZendeskClient, receiver_url: str) -> CheckRow:
    try:
        hooks = client.list_webhooks()
    except ZendeskAuthError as exc:
        return failed(SYSTEM, WEBHOOK, str(exc), ADMIN_FIX)
    except ZendeskError as exc:
        return failed(SYSTEM, WEBHOOK, str(exc), _base_fix())
    target = receiver_url.rstrip("/")
    matching = [h for h in hooks if str(h.get("endpoint", "")).rstrip("/") == target]
    if not matching:
        return failed(
            SYSTEM,
            WEBHOOK,
            f"none of {len(hooks)} webhook(s) points at {receiver_url}",
            "create one in Admin Center > Apps and integrations > Webhooks (endpoint "
            f"{receiver_url}, POST, JSON) and connect it to a trigger or the ticket events "
            "(docs/webhooks.md)",
        )
    active = [h for h in matching if h.get("status") in (None, "active")]
    if not active:
        return failed(
            SYSTEM,
            WEBHOOK,
            f"webhook {matching[0].get('name') or matching[0].get('id')} is inactive",
            "activate it in Admin Center > Apps and integrations > Webhooks",
        )
    return passed(SYSTEM, WEBHOOK, f"webhook {active[0].get('name') or active[0].get('id')}")
