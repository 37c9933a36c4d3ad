"""OAuth 2.0 authorization-code flow for Zendesk, with `state` and PKCE (S256).

Authorization page `/oauth/authorizations/new`; token endpoint `POST /oauth/tokens` taking
JSON (`grant_type` `authorization_code` or `refresh_token`); the code lives 120 s
(reference/zendesk-api.md, section 1.2). Tokens are returned to the caller and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from connector_pipeline import settings
from connector_pipeline.zendesk.config import subdomain_root
from connector_pipeline.zendesk.errors import ZendeskAuthError, ZendeskError, parse_error


@dataclass(frozen=True)
class PkcePair:
    verifier: str
    challenge: str
    method: str = "S256"


def new_pkce() -> PkcePair:
    """RFC 7636: a 43-128 character verifier and its base64url SHA-256 challenge."""
    verifier = secrets.token_urlsafe(64)[:96]
    return PkcePair(verifier, pkce_challenge(verifier))


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def new_state() -> str:
    return secrets.token_urlsafe(24)


def account_url(*, base_url: str | None = None, subdomain: str | None = None) -> str:
    if base_url:
        root = base_url.rstrip("/")
        return root[: -len(settings.ZENDESK_API_PREFIX)] if root.endswith("/api/v2") else root
    if subdomain:
        return subdomain_root(subdomain)
    raise ValueError("need ZENDESK_BASE_URL or ZENDESK_SUBDOMAIN")


def authorization_url(
    account: str,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    code_challenge: str,
    scope: str = settings.ZENDESK_OAUTH_DEFAULT_SCOPE,
) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{account.rstrip('/')}{settings.ZENDESK_OAUTH_AUTHORIZE_PATH}?{query}"


def parse_redirect(url: str, expected_state: str) -> str:
    """The code from the URL the browser was sent back to, after checking `state` (which
    is what stops a forged redirect from planting someone else's code)."""
    query = parse_qs(urlsplit(url).query)
    if "error" in query:
        description = query.get("error_description", [""])[0]
        raise ZendeskAuthError(f"authorization refused: {query['error'][0]} {description}".strip())
    state = query.get("state", [""])[0]
    if not secrets.compare_digest(state, expected_state):
        raise ZendeskAuthError("OAuth state does not match the one this flow started with")
    code = query.get("code", [""])[0]
    if not code:
        raise ZendeskAuthError("the redirect carries no authorization code")
    return code


@dataclass(frozen=True)
class OAuthTokens:
    access_token: str
    token_type: str
    scope: str
    expires_in: int | None
    refresh_token: str | None
    refresh_token_expires_in: int | None
    obtained_at: float

    @property
    def expires_at(self) -> float | None:
        return None if self.expires_in is None else self.obtained_at + self.expires_in

    def expired(self, *, margin_s: float = 60.0, now: float | None = None) -> bool:
        expires = self.expires_at
        return expires is not None and (now or time.time()) >= expires - margin_s

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __repr__(self) -> str:  # never show token values in logs or tracebacks
        return f"OAuthTokens(scope={self.scope!r}, expires_in={self.expires_in})"

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, now: float | None = None) -> OAuthTokens:
        if not data.get("access_token"):
            raise ZendeskAuthError("token endpoint answered without an access_token")

        def optional_int(key: str) -> int | None:
            value = data.get(key)
            return None if value is None else int(value)

        return cls(
            access_token=str(data["access_token"]),
            token_type=str(data.get("token_type") or "bearer"),
            scope=str(data.get("scope") or ""),
            expires_in=optional_int("expires_in"),
            refresh_token=data.get("refresh_token"),
            refresh_token_expires_in=optional_int("refresh_token_expires_in"),
            obtained_at=now if now is not None else time.time(),
        )


def _token_request(account: str, body: dict[str, Any], timeout_s: float) -> OAuthTokens:
    url = f"{account.rstrip('/')}{settings.ZENDESK_OAUTH_TOKEN_PATH}"
    payload = {k: v for k, v in body.items() if v is not None}
    try:
        response = httpx.post(url, json=payload, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ZendeskError(f"Zendesk token endpoint unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        error = parse_error(response.status_code, response.content, response.headers)
        if isinstance(error, ZendeskAuthError):
            raise error
        raise ZendeskAuthError(
            f"Zendesk refused the token request: {error}",
            status=error.status,
            error=error.error,
            description=error.description,
        )
    return OAuthTokens.from_api(response.json())


def exchange_code(
    account: str,
    *,
    client_id: str,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
    client_secret: str | None = None,
    scope: str | None = None,
    timeout_s: float = settings.ZENDESK_TIMEOUT_S,
) -> OAuthTokens:
    return _token_request(
        account,
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "scope": scope,
        },
        timeout_s,
    )


def refresh_tokens(
    account: str,
    *,
    client_id: str,
    refresh_token: str,
    client_secret: str | None = None,
    timeout_s: float = settings.ZENDESK_TIMEOUT_S,
) -> OAuthTokens:
    """A new access token (and, when Zendesk rotates it, a new refresh token)."""
    return _token_request(
        account,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        },
        timeout_s,
    )
