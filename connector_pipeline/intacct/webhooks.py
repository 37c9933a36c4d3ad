"""Verifying Intacct outbound webhook deliveries (Platform Triggers, 2025 R2).

What Sage documents (reference: intacct-api.md, "Added 2026-11-26"): a POST with an
`Authorization: Bearer <JWT>` header and an `X-Trusted-Context` header (base64, carrying the
client id), an idempotency key that stays the same across retries, and up to 4 attempts on
408 / 429 / 5xx. UNCONFIRMED, and therefore configurable: the JWT's algorithm and key (a third
party says deliveries are signed with the application's client secret, i.e. HS256), the
layout of the trusted context (read here as a JSON object with the client id under `clientId`,
`client_id` or `clientid`) and the idempotency header's name.

A delivery is only ever a hint (DESIGN decision 13): verification decides whether it may wake
the vendor read, and nothing from it is stored but its idempotency key.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from connector_pipeline import settings

_CLIENT_ID_KEYS = ("clientId", "client_id", "clientid")
_HMAC = frozenset({"HS256", "HS384", "HS512"})
_PUBLIC_KEY = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"})


class TriggerRejected(Exception):
    """A delivery that must not wake anything; `reason` is a short machine-readable word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class TriggerConfig:
    client_id: str
    key: str
    algorithms: tuple[str, ...] = settings.INTACCT_WEBHOOK_DEFAULT_ALGORITHMS
    max_age_s: float = settings.INTACCT_WEBHOOK_MAX_AGE_S
    leeway_s: float = settings.INTACCT_WEBHOOK_LEEWAY_S

    def __post_init__(self) -> None:
        algorithms = set(self.algorithms)
        if not algorithms or not (algorithms <= _HMAC or algorithms <= _PUBLIC_KEY):
            # Mixing families is the classic key-confusion hole: a public key used as an
            # HMAC secret by a forger.
            raise ValueError(
                f"{settings.ENV_INTACCT_WEBHOOK_ALGORITHMS}: one family only, "
                f"HMAC ({', '.join(sorted(_HMAC))}) or public key "
                f"({', '.join(sorted(_PUBLIC_KEY))}); got {', '.join(self.algorithms) or 'none'}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TriggerConfig | None:
        """None when Intacct deliveries are not configured (every delivery then gets 401)."""
        client_id = environ.get(settings.ENV_INTACCT_WEBHOOK_CLIENT_ID, "").strip()
        key = environ.get(settings.ENV_INTACCT_WEBHOOK_KEY, "").strip()
        if not client_id or not key:
            return None
        raw = environ.get(settings.ENV_INTACCT_WEBHOOK_ALGORITHMS, "")
        algorithms = tuple(a.strip() for a in raw.split(",") if a.strip())
        return cls(client_id, key, algorithms or settings.INTACCT_WEBHOOK_DEFAULT_ALGORITHMS)


@dataclass(frozen=True)
class TriggerDelivery:
    """What a verified delivery tells: only that something changed, and its idempotency key."""

    idempotency_key: str | None
    issued_at: float


def _header(headers: Mapping[str, str], name: str) -> str:
    # Starlette's headers are case-insensitive; a plain dict from a test may not be.
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), "")
    return value.strip()


def trusted_client_id(header: str) -> str:
    """The client id in an `X-Trusted-Context` header, or TriggerRejected."""
    if not header:
        raise TriggerRejected("missing_context", "X-Trusted-Context header is missing")
    try:
        padded = header + "=" * (-len(header) % 4)
        data = json.loads(base64.b64decode(padded, altchars=b"-_" if "-" in header else None))
    except (binascii.Error, ValueError, RecursionError):
        raise TriggerRejected("bad_context", "X-Trusted-Context is not base64 JSON") from None
    if not isinstance(data, dict):
        raise TriggerRejected("bad_context", "X-Trusted-Context is not a JSON object")
    found = next((data[k] for k in _CLIENT_ID_KEYS if isinstance(data.get(k), str)), None)
    if found is None:
        raise TriggerRejected("bad_context", "X-Trusted-Context carries no client id")
    return str(found)


def verify_trigger(
    headers: Mapping[str, str], config: TriggerConfig, *, now: float | None = None
) -> TriggerDelivery:
    """Check a delivery's bearer JWT (signature with the configured key and algorithms, issued
    recently, not expired) and that its trusted context names the configured client id.
    Raises TriggerRejected with the reason; never looks at the body."""
    now = time.time() if now is None else now
    scheme, _, token = _header(headers, "Authorization").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TriggerRejected("missing_token", "Authorization: Bearer <JWT> is missing")
    try:
        # Times are checked below against `now`, so tests and replays are deterministic.
        claims = jwt.decode(
            token.strip(),
            config.key,
            algorithms=list(config.algorithms),
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "require": ["iat"],
            },
        )
    except jwt.InvalidTokenError as exc:
        raise TriggerRejected("bad_token", f"bearer token rejected: {type(exc).__name__}") from None
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        raise TriggerRejected("bad_token", "bearer token's iat is not a number")
    if issued > now + config.leeway_s:
        raise TriggerRejected("not_yet_valid", "bearer token issued in the future")
    if now - issued > config.max_age_s + config.leeway_s:
        raise TriggerRejected("stale", f"bearer token issued {now - issued:.0f} s ago")
    expires = claims.get("exp")
    if isinstance(expires, int | float) and expires < now - config.leeway_s:
        raise TriggerRejected("expired", "bearer token has expired")
    client_id = trusted_client_id(_header(headers, settings.INTACCT_WEBHOOK_TRUSTED_CONTEXT_HEADER))
    if client_id != config.client_id:
        raise TriggerRejected("wrong_client", "X-Trusted-Context names another client id")
    # When the token names a client too, it must be the same one.
    claimed = next((claims[k] for k in _CLIENT_ID_KEYS if isinstance(claims.get(k), str)), None)
    if claimed is not None and claimed != config.client_id:
        raise TriggerRejected("wrong_client", "bearer token names another client id")
    key = next(
        (v for h in settings.INTACCT_WEBHOOK_IDEMPOTENCY_HEADERS if (v := _header(headers, h))),
        None,
    )
    if key is not None and len(key) > settings.WEBHOOK_MAX_ID_LENGTH:
        limit = settings.WEBHOOK_MAX_ID_LENGTH
        raise TriggerRejected("bad_id", f"idempotency key longer than {limit}")
    return TriggerDelivery(idempotency_key=key, issued_at=float(issued))
