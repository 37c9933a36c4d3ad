"""Where the Zendesk API lives, validated: a subdomain becomes `https://<sub>.zendesk.com`;
a full base URL must be https unless the sandbox flag allows a custom one."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from connector_pipeline import settings

# A DNS label: what Zendesk allows for an account subdomain (letters, digits, hyphens).
_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


class ZendeskConfigError(ValueError):
    """A Zendesk setting is unusable; the message names the variable to fix."""


def subdomain_root(subdomain: str) -> str:
    """`https://<subdomain>.zendesk.com`, or ZendeskConfigError for anything that is not a
    bare subdomain (a full host or URL pasted in, dots, slashes, spaces)."""
    value = subdomain.strip()
    if not _SUBDOMAIN.match(value):
        raise ZendeskConfigError(
            f"{settings.ENV_ZENDESK_SUBDOMAIN}={value!r} is not a Zendesk subdomain: give only "
            "the part before .zendesk.com (acme for https://acme.zendesk.com)"
        )
    return f"https://{value.lower()}.zendesk.com"


def base_url_root(base_url: str, *, allow_custom: bool) -> str:
    """The base URL without a trailing `/api/v2`; https required unless `allow_custom`
    (`ZENDESK_ALLOW_CUSTOM_BASE_URL=1`, set by the sandbox tooling)."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ZendeskConfigError(
            f"{settings.ENV_ZENDESK_BASE_URL}={base_url!r} is not an absolute http(s) URL"
        )
    if parts.scheme != "https" and not allow_custom:
        raise ZendeskConfigError(
            f"{settings.ENV_ZENDESK_BASE_URL} must be https:// (plain http is for the sandbox "
            f"only: {settings.ENV_ZENDESK_ALLOW_CUSTOM_BASE_URL}=1)"
        )
    root = base_url.strip().rstrip("/")
    if root.endswith(settings.ZENDESK_API_PREFIX):
        root = root[: -len(settings.ZENDESK_API_PREFIX)]
    return root


def account_root(base_url: str | None, subdomain: str | None, *, allow_custom: bool) -> str:
    """The account's root URL from `ZENDESK_BASE_URL` (preferred) or `ZENDESK_SUBDOMAIN`."""
    if base_url:
        return base_url_root(base_url, allow_custom=allow_custom)
    if subdomain:
        return subdomain_root(subdomain)
    raise ZendeskConfigError(
        f"set {settings.ENV_ZENDESK_SUBDOMAIN} (acme for https://acme.zendesk.com)"
    )
