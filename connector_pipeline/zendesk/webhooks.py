"""Zendesk webhook signatures: `base64(HMAC-SHA256(secret, timestamp + raw_body))`.

The key is the signing secret string as UTF-8 bytes (not base64-decoded, although it looks
like base64); the message is the `X-Zendesk-Webhook-Signature-Timestamp` header value
followed by the raw body bytes, with no separator. Verify before parsing anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
INVOCATION_ID_HEADER = "X-Zendesk-Webhook-Invocation-Id"
WEBHOOK_ID_HEADER = "X-Zendesk-Webhook-Id"
ACCOUNT_ID_HEADER = "X-Zendesk-Account-Id"
DEFAULT_TOLERANCE_S = 300.0


class WebhookVerificationError(Exception):
    """A delivery that must not be trusted. `reason` is one of: missing, malformed,
    stale, mismatch."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def sign(secret: str, body: bytes, timestamp: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def parse_timestamp(timestamp: str) -> datetime:
    """Zendesk sends ISO-8601 UTC, e.g. `2023-09-18T23:38:13Z`."""
    parsed = datetime.fromisoformat(timestamp.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_s: float | None = DEFAULT_TOLERANCE_S,
    now: datetime | None = None,
) -> None:
    """Raise `WebhookVerificationError` unless `signature` is the signature of `body` at
    `timestamp` under `secret`, and (with a tolerance) the timestamp is recent."""
    if not signature or not timestamp:
        raise WebhookVerificationError("missing", "signature or signature timestamp missing")
    if not secret:
        raise WebhookVerificationError("missing", "no signing secret configured")
    expected = sign(secret, body, timestamp)
    if not hmac.compare_digest(
        expected.encode("ascii"), signature.strip().encode("ascii", "replace")
    ):
        raise WebhookVerificationError("mismatch", "signature does not match the body")
    if tolerance_s is not None:
        try:
            signed_at = parse_timestamp(timestamp)
        except ValueError as exc:
            raise WebhookVerificationError(
                "malformed", "signature timestamp is not ISO-8601"
            ) from exc
        age = abs(((now or datetime.now(UTC)) - signed_at).total_seconds())
        if age > tolerance_s:
            raise WebhookVerificationError(
                "stale",
                f"signature timestamp is {age:.0f} s away from now (limit {tolerance_s:.0f} s)",
            )


def verify_with_any(
    secrets: list[str],
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_s: float | None = DEFAULT_TOLERANCE_S,
    now: datetime | None = None,
) -> int:
    """Verify against several secrets (rotation: current first). Returns the index of the
    secret that matched; raises the most telling error when none does."""
    if not secrets:
        raise WebhookVerificationError("missing", "no signing secret configured")
    last: WebhookVerificationError | None = None
    for index, secret in enumerate(secrets):
        try:
            verify_signature(secret, body, timestamp, signature, tolerance_s=tolerance_s, now=now)
            return index
        except WebhookVerificationError as exc:
            if exc.reason != "mismatch":
                raise
            last = exc
    assert last is not None
    raise last
