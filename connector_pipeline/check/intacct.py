"""`ml-connector check`, Intacct rows: sender, sign-in, session endpoint, the user's
formatting, read permission on each source object, and the ticket custom object.

Reads only. One getAPISession at most, so a wrong password costs one sign-in attempt
(Intacct locks users out after repeated failures)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from connector_pipeline import settings
from connector_pipeline.check.rows import CheckRow, failed, passed, skipped, warned
from connector_pipeline.intacct import IntacctClient
from connector_pipeline.intacct.errors import (
    IntacctAuthError,
    IntacctError,
    IntacctSenderAuthError,
    credential_fix,
)
from connector_pipeline.sync.tickets import TicketRecordMapping

SYSTEM = "intacct"
SENDER = "sender authorization"
SIGN_IN = "user sign-in"
ENDPOINT = "session endpoint"
FORMATTING = "user formatting"
TICKET_OBJECT = "ticket custom object"
TICKET_FIELDS = "ticket object fields"
RELATIONSHIP = "ticket object relationship to VENDOR"
TICKET_READ = "ticket object read"
_SESSION_CHECKS = (ENDPOINT, FORMATTING, TICKET_OBJECT, TICKET_FIELDS, RELATIONSHIP, TICKET_READ)

_READ_PERMISSION_FIX = {
    "VENDOR": "Accounts Payable > Vendors",
    "CUSTOMER": "Accounts Receivable > Customers",
    # Read by the standing assets (docs/standing.md).
    "APBILL": "Accounts Payable > Bills",
    "APPYMT": "Accounts Payable > Payments",
    "ARINVOICE": "Accounts Receivable > Invoices",
    "ARPYMT": "Accounts Receivable > Payments",
}


def _as_list(value: Any) -> list[dict[str, Any]]:
    """A repeated XML element comes back as a list, a single one as a dict."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return [value] if isinstance(value, dict) else []


def _error_text(exc: IntacctError) -> str:
    details = "; ".join(str(e) for e in exc.errors)
    return details or exc.message


def check_intacct(
    environ: Mapping[str, str],
    tickets: TicketRecordMapping,
    source_objects: Sequence[str],
    **client_options: Any,
) -> list[CheckRow]:
    """The Intacct rows (the client's errors never carry the passwords: it scrubs them)."""
    permission_checks = [f"read permission on {obj}" for obj in source_objects]
    try:
        client = IntacctClient.from_env(environ, **client_options)
    except ValueError as exc:  # the endpoint URL: the required variables were checked
        return [
            failed(SYSTEM, "gateway endpoint", str(exc), f"fix {settings.ENV_INTACCT_ENDPOINT_URL}")
        ]
    with client:
        try:
            endpoint = client.session_endpoint
        except IntacctSenderAuthError as exc:
            return [
                failed(SYSTEM, SENDER, _error_text(exc), credential_fix(exc) or ""),
                skipped(SYSTEM, SIGN_IN, "the gateway checks the sender first"),
                *(skipped(SYSTEM, c, "needs a session") for c in permission_checks),
                *(skipped(SYSTEM, c, "needs a session") for c in _SESSION_CHECKS),
            ]
        except IntacctAuthError as exc:
            return [
                passed(
                    SYSTEM, SENDER, f"sender {environ[settings.ENV_INTACCT_SENDER_ID]} accepted"
                ),
                failed(SYSTEM, SIGN_IN, _error_text(exc), credential_fix(exc) or ""),
                *(skipped(SYSTEM, c, "needs a session") for c in permission_checks),
                *(skipped(SYSTEM, c, "needs a session") for c in _SESSION_CHECKS),
            ]
        except IntacctError as exc:
            return [
                failed(
                    SYSTEM,
                    "gateway reachable",
                    _error_text(exc),
                    f"check {settings.ENV_INTACCT_ENDPOINT_URL} and the network path to it",
                )
            ]
        rows = [
            _sender_ok(environ),
            passed(
                SYSTEM,
                SIGN_IN,
                f"user {environ[settings.ENV_INTACCT_USER_ID]} signed in to company "
                f"{environ[settings.ENV_INTACCT_COMPANY_ID]}",
            ),
            _endpoint_row(endpoint),
            _formatting_row(client),
        ]
        rows += [_permission_row(client, obj) for obj in source_objects]
        rows += _ticket_object_rows(client, tickets)
        return rows


def _sender_ok(environ: Mapping[str, str]) -> CheckRow:
    return passed(SYSTEM, SENDER, f"sender {environ[settings.ENV_INTACCT_SENDER_ID]} accepted")


def _endpoint_row(endpoint: str) -> CheckRow:
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host.endswith(settings.INTACCT_ENDPOINT_HOST_SUFFIX):
        return passed(SYSTEM, ENDPOINT, endpoint)
    # The client refuses anything else unless the sandbox flag is set.
    return warned(
        SYSTEM,
        ENDPOINT,
        f"{endpoint} (not https on *{settings.INTACCT_ENDPOINT_HOST_SUFFIX}: allowed by "
        f"{settings.ENV_INTACCT_ALLOW_CUSTOM_ENDPOINT}=1, for the sandbox only)",
        f"unset {settings.ENV_INTACCT_ALLOW_CUSTOM_ENDPOINT} for a real company",
    )


def _formatting_row(client: IntacctClient) -> CheckRow:
    try:
        formatting = client.formatting
    except IntacctError as exc:
        return failed(
            SYSTEM,
            FORMATTING,
            f"readUserFormatting failed: {_error_text(exc)}",
            "the Web Services user must be able to read its own preferences",
        )
    found = (
        f"time zone GMT{formatting.gmtoffset}, date format {formatting.dateformat}, "
        f"{formatting.clock}-hour clock, locale {formatting.locale}"
    )
    try:
        formatting.date_pattern  # noqa: B018 - raises for a format timestamps can't use
        formatting.tz  # noqa: B018
    except ValueError as exc:
        return failed(
            SYSTEM,
            FORMATTING,
            f"{found}: {exc}",
            "sign in to Intacct as the Web Services user and pick a numeric date format "
            "(day, month and 4-digit year with one separator) under My Preferences",
        )
    if formatting.clock.strip() not in ("12", "24"):
        return warned(SYSTEM, FORMATTING, f"{found}: unknown clock, read as 24-hour")
    if not formatting.locale.lower().startswith("en"):
        # Dates are read by the format above; the locale only matters to texts the
        # gateway translates (status words, error messages), which were seen in English.
        return warned(
            SYSTEM,
            FORMATTING,
            f"{found}: the connector was tested with English locales",
            "en_US under My Preferences is the safe choice for the Web Services user",
        )
    return passed(SYSTEM, FORMATTING, found)


def _permission_row(client: IntacctClient, object_name: str) -> CheckRow:
    check = f"read permission on {object_name}"
    try:
        # lookup and inspect bypass permissions (PL04000005), so read one record.
        page = client.query(object_name, ["RECORDNO"], page_size=1)
    except IntacctError as exc:
        where = _READ_PERMISSION_FIX.get(object_name, object_name)
        return failed(
            SYSTEM,
            check,
            _error_text(exc),
            f"give the Web Services user's role read permission on {where} "
            "(Company > Admin > Roles, or the user's permissions)",
        )
    total = page.total_count if page.total_count is not None else page.count
    return passed(SYSTEM, check, f"readable ({total} records)")


def _ticket_object_rows(client: IntacctClient, tickets: TicketRecordMapping) -> list[CheckRow]:
    name = tickets.object_name
    platform_fix = (
        f"create the custom object {name!r} in Platform Services (Platform Services > "
        "Objects; Platform Services must be subscribed in Company > Subscriptions), or set "
        "ticket_record.object_name in the mapping file"
    )
    try:
        definition = client.lookup(name)
    except IntacctError as exc:
        definition, error = {}, _error_text(exc)
    else:
        error = "lookup returned no definition"
    # `lookup` answers <data><Type Name=…><Fields>…: the client's record is the Type
    # element itself (its children), or wraps it when the gateway nests differently.
    type_el = definition.get("Type", definition) if isinstance(definition, dict) else None
    if not isinstance(type_el, dict) or "Fields" not in type_el:
        return [
            failed(SYSTEM, TICKET_OBJECT, f"{name}: {error}", platform_fix),
            skipped(SYSTEM, TICKET_FIELDS, "needs the custom object"),
            skipped(SYSTEM, RELATIONSHIP, "needs the custom object"),
            skipped(SYSTEM, TICKET_READ, "needs the custom object"),
        ]
    fields = _as_list((type_el.get("Fields") or {}).get("Field"))
    have = {str(f.get("ID", "")).lower() for f in fields}
    wanted = {*tickets.fields, tickets.ticket_id_field} - {tickets.relationship_field}
    missing = sorted(f for f in wanted if f.lower() not in have)
    rows = [passed(SYSTEM, TICKET_OBJECT, f"{name} exists ({len(fields)} fields)")]
    if missing:
        rows.append(
            failed(
                SYSTEM,
                TICKET_FIELDS,
                f"{name} lacks {', '.join(missing)}",
                f"add the fields to {name} in Platform Services, or change ticket_record.fields "
                "in the mapping file",
            )
        )
    else:
        rows.append(passed(SYSTEM, TICKET_FIELDS, f"all {len(wanted)} mapped fields exist"))
    rows.append(_relationship_row(type_el, tickets))
    try:
        page = client.query(name, [tickets.key_field], page_size=1)
    except IntacctError as exc:
        rows.append(
            failed(
                SYSTEM,
                TICKET_READ,
                _error_text(exc),
                f"give the Web Services user's role permission on the {name} object",
            )
        )
    else:
        total = page.total_count if page.total_count is not None else page.count
        rows.append(passed(SYSTEM, TICKET_READ, f"readable ({total} records)"))
    return rows


def _relationship_row(type_el: Mapping[str, Any], tickets: TicketRecordMapping) -> CheckRow:
    wanted = tickets.relationship_field.lower()
    for rel in _as_list((type_el.get("Relationships") or {}).get("Relationship")):
        names = {str(rel.get("RELATEDBY", "")).lower(), str(rel.get("OBJECTPATH", "")).lower()}
        if wanted in names and str(rel.get("OBJECTNAME", "")).upper() == "VENDOR":
            return passed(
                SYSTEM,
                RELATIONSHIP,
                f"{tickets.relationship_field} relates {tickets.object_name} to VENDOR "
                f"({rel.get('RELATIONSHIPTYPE', 'type unknown')})",
            )
    return failed(
        SYSTEM,
        RELATIONSHIP,
        f"{tickets.object_name} has no relationship {tickets.relationship_field} to VENDOR",
        f"add a many-to-one relationship from {tickets.object_name} to Vendor in Platform "
        f"Services (its field must be {tickets.relationship_field}), or set "
        "ticket_record.relationship_field in the mapping file",
    )
