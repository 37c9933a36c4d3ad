"""Credentials as the connector sees them, without Dagster or I/O: which variables hold
them, a fingerprint that changes when any of them changes (and never reveals them), and the
one line that tells a user what to fix when a service refuses them."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from connector_pipeline import settings
from connector_pipeline.intacct.errors import IntacctAuthError, IntacctError
from connector_pipeline.intacct.errors import credential_fix as intacct_fix
from connector_pipeline.zendesk.errors import ZendeskAuthError

INTACCT = "intacct"
ZENDESK = "zendesk"

CREDENTIAL_VARIABLES: dict[str, tuple[str, ...]] = {
    INTACCT: (
        settings.ENV_INTACCT_SENDER_ID,
        settings.ENV_INTACCT_SENDER_PASSWORD,
        settings.ENV_INTACCT_COMPANY_ID,
        settings.ENV_INTACCT_USER_ID,
        settings.ENV_INTACCT_USER_PASSWORD,
        settings.ENV_INTACCT_ENTITY_ID,
        settings.ENV_INTACCT_ENDPOINT_URL,
    ),
    ZENDESK: (
        settings.ENV_ZENDESK_SUBDOMAIN,
        settings.ENV_ZENDESK_BASE_URL,
        settings.ENV_ZENDESK_EMAIL,
        settings.ENV_ZENDESK_API_TOKEN,
        settings.ENV_ZENDESK_OAUTH_TOKEN,
    ),
}

# scrypt, not a bare SHA-256: the fingerprint sits in the ledger, and a fast hash of a
# weak password could be reversed by guessing. The cost keeps a guess slow; the salt
# keeps precomputed tables useless.
_SALT = b"ml-connector credential fingerprint v1:"
_SCRYPT_N = 2**14


def fingerprint(system: str, environ: Mapping[str, str]) -> str:
    """A hex digest of `system`'s credential variables in `environ`; equal exactly when
    every value is equal."""
    material = "\0".join(
        f"{name}={environ.get(name, '')}" for name in CREDENTIAL_VARIABLES[system]
    ).encode()
    digest = hashlib.scrypt(material, salt=_SALT + system.encode(), n=_SCRYPT_N, r=8, p=1)
    return digest.hex()


@dataclass(frozen=True)
class Refusal:
    """A service refused the credentials or the permission: retrying cannot help."""

    system: str
    fix: str  # one line naming what to change
    # True for a refused sign-in: automatic runs pause (repeated sign-ins lock the user).
    # A missing permission fails just as fast but locks nothing, so runs carry on.
    pauses_runs: bool


def credential_failure(exc: BaseException) -> Refusal | None:
    """What to tell the user when `exc` says a service refused the credentials or the
    identity lacks permission; None for any other failure."""
    if isinstance(exc, IntacctError):
        line = intacct_fix(exc)
        if line is None:
            return None
        return Refusal(INTACCT, line, pauses_runs=isinstance(exc, IntacctAuthError))
    if isinstance(exc, ZendeskAuthError):
        if exc.status == 403:
            return Refusal(
                ZENDESK,
                "Zendesk refused the request for lack of permission: the user in "
                f"{settings.ENV_ZENDESK_EMAIL} must be an admin (Admin Center > People > Team "
                f"members), or {settings.ENV_ZENDESK_OAUTH_TOKEN} needs the read and write "
                "scopes",
                pauses_runs=False,
            )
        return Refusal(
            ZENDESK,
            f"Zendesk refused the credentials: check {settings.ENV_ZENDESK_EMAIL} and "
            f"{settings.ENV_ZENDESK_API_TOKEN} (Admin Center > Apps and integrations > Zendesk "
            f"API), or {settings.ENV_ZENDESK_OAUTH_TOKEN}",
            pauses_runs=True,
        )
    return None


def missing_configuration(values: Mapping[str, str | None]) -> list[str]:
    """The variables (by name) still to set, given the configured values by variable name;
    alternatives are listed as `A or B`. Only the systems present in `values` are judged."""
    missing: list[str] = []
    intacct_required = (
        settings.ENV_INTACCT_SENDER_ID,
        settings.ENV_INTACCT_SENDER_PASSWORD,
        settings.ENV_INTACCT_COMPANY_ID,
        settings.ENV_INTACCT_USER_ID,
        settings.ENV_INTACCT_USER_PASSWORD,
    )
    missing += [name for name in intacct_required if name in values and not values[name]]
    if any(name.startswith("ZENDESK_") for name in values):

        def has(name: str) -> bool:
            return bool(values.get(name))

        if not (has(settings.ENV_ZENDESK_SUBDOMAIN) or has(settings.ENV_ZENDESK_BASE_URL)):
            missing.append(settings.ENV_ZENDESK_SUBDOMAIN)
        if not has(settings.ENV_ZENDESK_OAUTH_TOKEN):
            if not has(settings.ENV_ZENDESK_API_TOKEN) and not has(settings.ENV_ZENDESK_EMAIL):
                missing.append(
                    f"{settings.ENV_ZENDESK_EMAIL} + {settings.ENV_ZENDESK_API_TOKEN} "
                    f"(or {settings.ENV_ZENDESK_OAUTH_TOKEN})"
                )
            elif not has(settings.ENV_ZENDESK_API_TOKEN):
                missing.append(settings.ENV_ZENDESK_API_TOKEN)
            elif not has(settings.ENV_ZENDESK_EMAIL):
                missing.append(settings.ENV_ZENDESK_EMAIL)
    return missing
