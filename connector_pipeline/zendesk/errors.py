"""The Zendesk exception tree and the one table that maps an HTTP answer to it.

Zendesk error bodies come in several envelopes (reference/zendesk-api.md, section 7):
`{"error", "description", "details"}`, `{"error": {"title", "message"}}`,
`{"errors": [{"code", "title"}]}`, the edge-protection `{"detail", "status", "title"}`,
plain text and HTML. `parse_error` reads all of them and never assumes JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector_pipeline import guarded_http, settings


class ZendeskError(Exception):
    """Any failed Zendesk call. `retryable` says whether repeating the same request may
    succeed; `request_id` is what Zendesk support asks for."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        description: str | None = None,
        details: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.description = description
        self.details = details
        self.request_id = request_id
        self.retry_after = retry_after


class ZendeskAuthError(ZendeskError):
    """401 or 403: bad credentials, or an identity without the needed role or scope."""


class ZendeskNotFound(ZendeskError):
    """404 RecordNotFound."""


class ZendeskInvalid(ZendeskError):
    """400 / 422: the request itself is wrong (RecordInvalid, TooManyValues, ...)."""


class ZendeskRateLimited(ZendeskError):
    """429 (account, endpoint or job limit). `retry_after` is how long Zendesk asked us to
    wait; the client raises it once waiting would exceed its retry budget, so a scheduler
    can come back later."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kwargs)


class ZendeskRetryAfterTooLong(ZendeskRateLimited):
    """429 with a `Retry-After` beyond `settings.RETRY_AFTER_MAX_S` (`inf`, 999999, a
    far-future date): not waited for by the client nor by a Dagster step retry."""

    retryable = False


class ZendeskTooManyJobs(ZendeskRateLimited):
    """More than 30 bulk jobs queued or running."""


class ZendeskConflict(ZendeskError):
    """409: usually simultaneous creation of the same resource; Zendesk says try again."""

    retryable = True


class ZendeskServerError(ZendeskError):
    """5xx, an HTML error page or a dropped connection: transient on Zendesk's side."""

    retryable = True


class ZendeskTransportError(ZendeskServerError):
    """No HTTP answer at all (connection refused or reset, timeout)."""


class ZendeskDeadlineExceeded(ZendeskTransportError):
    """The answer did not arrive in full within the request's overall deadline."""


class ZendeskUnexpectedResponse(ZendeskError):
    """An answer the client cannot take as success or as a Zendesk error: a redirect or
    other unexpected status, an oversized body, an unknown encoding, JSON nested too deeply.
    Not retried: the same request would get the same answer."""


_AUTH_HINTS = {
    401: "Zendesk could not authenticate the request: check ZENDESK_EMAIL with "
    "ZENDESK_API_TOKEN (sent as '{email}/token:{token}'), or ZENDESK_OAUTH_TOKEN",
    403: "Zendesk refused the request for lack of permission: the API user must be an admin "
    "(incremental exports and organization search are admin-only) and an OAuth token needs "
    "the matching scope",
}

# status -> exception class; anything 5xx not listed is a server error.
_STATUS_CLASSES: dict[int, type[ZendeskError]] = {
    400: ZendeskInvalid,
    401: ZendeskAuthError,
    403: ZendeskAuthError,
    404: ZendeskNotFound,
    409: ZendeskConflict,
    413: ZendeskInvalid,
    422: ZendeskInvalid,
    429: ZendeskRateLimited,
}

_HTML_TITLE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class _Envelope:
    error: str | None
    description: str | None
    details: Any


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in seconds, clamped below (see `guarded_http.parse_retry_after`;
    Zendesk sends an integer, but a date or garbage must not break the client)."""
    return guarded_http.parse_retry_after(_header(headers, "Retry-After"))


def _text_of(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _from_json(data: Any) -> _Envelope | None:
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        # {"error": {"title": "Forbidden", "message": "You do not have access..."}}
        return _Envelope(
            _text_of(error.get("title") or error.get("code")),
            _text_of(error.get("message") or error.get("description")),
            data.get("details"),
        )
    if error is not None or "description" in data:
        # OAuth endpoints say `error_description` instead of `description`.
        description = data.get("description", data.get("error_description"))
        return _Envelope(_text_of(error), _text_of(description), data.get("details"))
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], dict) else {"title": str(errors[0])}
        titles = "; ".join(
            str(e.get("title") or e.get("detail") or e) if isinstance(e, dict) else str(e)
            for e in errors
        )
        return _Envelope(_text_of(first.get("code")), titles, errors)
    if "title" in data or "detail" in data:
        # Edge protection: {"detail": "...", "status": "429", "title": "Automated response"}
        return _Envelope(_text_of(data.get("title")), _text_of(data.get("detail")), None)
    return None


def _envelope(body: bytes) -> _Envelope:
    stripped = body.strip()
    if not stripped:
        return _Envelope(None, None, None)
    try:
        parsed = _from_json(json.loads(stripped))
    except (ValueError, UnicodeDecodeError, RecursionError):
        parsed = None
    if parsed is not None:
        return parsed
    if stripped[:1] == b"<":
        match = _HTML_TITLE.search(stripped)
        text = match.group(1) if match else stripped
        cleaned = _TAGS.sub(" ", text.decode("utf-8", "replace"))
        return _Envelope(None, " ".join(cleaned.split())[:300] or None, None)
    return _Envelope(None, stripped.decode("utf-8", "replace")[:1000], None)


def _class_for(status: int, envelope: _Envelope, retry_after: float | None) -> type[ZendeskError]:
    if status == 429 and retry_after is not None and retry_after > settings.RETRY_AFTER_MAX_S:
        return ZendeskRetryAfterTooLong
    if envelope.error == "TooManyJobs":
        return ZendeskTooManyJobs
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status >= 500:
        return ZendeskServerError
    if status < 400:
        return ZendeskUnexpectedResponse
    return ZendeskError


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> ZendeskError:
    """The exception for a non-2xx answer, whatever shape its body has."""
    envelope = _envelope(body)
    retry_after = parse_retry_after(headers)
    cls = _class_for(status, envelope, retry_after)
    request_id = _header(headers, "X-Zendesk-Request-Id") or _header(headers, "X-Request-Id")
    parts = [f"Zendesk HTTP {status}"]
    if envelope.error:
        parts.append(envelope.error)
    if envelope.description and envelope.description != envelope.error:
        parts.append(envelope.description)
    message = ": ".join(parts)
    if status in _AUTH_HINTS:
        message = f"{message} ({_AUTH_HINTS[status]})"
    if 300 <= status < 400:
        location = _header(headers, "Location") or "nowhere"
        message = (
            f"{message}: unexpected redirect to {location} (check ZENDESK_SUBDOMAIN or "
            "ZENDESK_BASE_URL: the API answers without redirects)"
        )
    if cls is ZendeskRetryAfterTooLong:
        message = f"{message}: Zendesk asked to wait {retry_after:g} s, longer than allowed"
    if request_id:
        message = f"{message} [request id {request_id}]"
    return cls(
        message,
        status=status,
        error=envelope.error,
        description=envelope.description,
        details=envelope.details,
        request_id=request_id,
        retry_after=retry_after,
    )


def is_duplicate_value(details: Any, field: str = "name") -> bool:
    """True when a RecordInvalid `details` says `field` is already taken."""
    if not isinstance(details, dict):
        return False
    entries = details.get(field) or []
    return any(
        isinstance(entry, dict)
        and (entry.get("error") == "DuplicateValue" or entry.get("type") == "taken")
        for entry in entries
    )
