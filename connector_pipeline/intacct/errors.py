"""The Intacct exception tree and the table that maps gateway errors onto it.

Intacct reports most failures inside HTTP 200 bodies, at three levels (control,
authentication, result), and reuses one errorno (XL03000006) for a bad sender, a bad
login and an expired session. The level and the text tell them apart, so classification
is a table of (level, errorno, text) rules rather than a cascade of ifs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from connector_pipeline.outcome import FailureKind


@dataclass(frozen=True)
class IntacctErrorDetail:
    """One `<error>` element, every child kept (description2 is URL-decoded)."""

    errorno: str
    description: str = ""
    description2: str = ""
    correction: str = ""

    def __str__(self) -> str:
        parts = (self.errorno, self.description, self.description2, self.correction)
        return " ".join(p for p in parts if p)


class IntacctError(Exception):
    """Base of every Intacct failure. `retryable` says whether the same call may succeed later."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        errors: Sequence[IntacctErrorDetail] = (),
        *,
        control_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.message = message
        self.errors = list(errors)
        self.control_id = control_id
        self.http_status = http_status
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.message
        if self.control_id:
            text += f" [control id {self.control_id}]"
        if self.errors:
            text += " - " + " - ".join(str(e) for e in self.errors)
        return text


class IntacctControlError(IntacctError):
    """The control block failed: bad sender credentials, malformed request, expired company."""


class IntacctAuthError(IntacctError):
    """Authentication failed: bad user login or an unauthorised sender. Not retried."""


class IntacctSenderAuthError(IntacctControlError, IntacctAuthError):
    """The Web Services sender was refused: wrong sender id or password, or a sender the
    company has not authorized. Not retried."""


class IntacctSessionInvalid(IntacctAuthError):
    """The session expired or was revoked; a new getAPISession fixes it."""

    retryable = True


class IntacctResultError(IntacctError):
    """A function failed or was aborted (business rules, permissions, unknown object)."""


class IntacctPermissionError(IntacctResultError):
    """The Web Services user may not do this (PL04000005, "You do not have permission").
    Not retried: it needs a change of role in Intacct."""


class IntacctTransientError(IntacctError):
    """A failure that a later attempt may not see: 5xx, reset, timeout, 'try again later'."""

    retryable = True


class IntacctRateLimited(IntacctTransientError):
    """HTTP 429 / GW-0010: too many requests, or a concurrent request for the same company."""

    def __init__(
        self,
        message: str,
        errors: Sequence[IntacctErrorDetail] = (),
        *,
        retry_after: float | None = None,
        control_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, errors, control_id=control_id, http_status=http_status)


class IntacctRetryAfterTooLong(IntacctRateLimited):
    """HTTP 429 whose Retry-After exceeds `settings.RETRY_AFTER_MAX_S` (`inf`, a far-future
    date): neither the client nor a Dagster step waits that long."""

    retryable = False


class IntacctDeadlineExceeded(IntacctTransientError):
    """A read's answer did not arrive in full within the request's overall deadline."""


class IntacctWriteOutcomeUnknown(IntacctTransientError):
    """A write was sent but its answer was lost (timeout, 524, reset, garbled body).

    It is never resent blindly: the caller must first look up what exists (for example
    `query_in` on its own key) and only then create what is missing.
    """


class IntacctResponseError(IntacctError):
    """The body is not an Intacct response we can trust (unsafe, oversized or unexpected)."""


class IntacctMalformedResponse(IntacctTransientError):
    """The body was empty, HTML or truncated XML: usually a proxy or a cut connection."""


@dataclass(frozen=True)
class _Rule:
    exc: type[IntacctError]
    errorno: str | None = None
    text: re.Pattern[str] | None = None


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# Order matters: the first matching rule wins. Text rules see description, description2
# and correction joined. Sources: reference/intacct-api.md, section 3 error catalogue.
_SENDER_TEXT = _rx(
    r"partner id or password|invalid web services authorization|"
    r"not authorized to make web services requests"
)
_AUTH_RULES = (
    _Rule(IntacctSessionInvalid, "XL03000006", _rx(r"^\s*invalid session")),
    _Rule(IntacctSenderAuthError, None, _SENDER_TEXT),
    _Rule(IntacctAuthError),
)
_CONTROL_RULES = (
    _Rule(IntacctSenderAuthError, None, _SENDER_TEXT),
    # The gateway's own 401 with an XML body: the user sign-in, reported at control level.
    _Rule(IntacctAuthError, None, _rx(r"sign-in information is incorrect")),
    _Rule(IntacctRateLimited, "GW-0010"),
    _Rule(IntacctRateLimited, None, _rx(r"API rate limit exceeded")),
    _Rule(IntacctTransientError, None, _rx(r"try again later|temporarily off-?line")),
    _Rule(IntacctControlError),
)
_RESULT_RULES = (
    _Rule(IntacctRateLimited, "GW-0010"),
    _Rule(IntacctRateLimited, None, _rx(r"API rate limit exceeded")),
    _Rule(IntacctTransientError, None, _rx(r"try again later|temporarily off-?line")),
    _Rule(IntacctPermissionError, "PL04000005"),
    _Rule(IntacctPermissionError, None, _rx(r"do not have permission")),
    _Rule(IntacctResultError),
)
_RULES = {"control": _CONTROL_RULES, "authentication": _AUTH_RULES, "result": _RESULT_RULES}


def classify(level: str, errors: Sequence[IntacctErrorDetail]) -> type[IntacctError]:
    """The exception class for errors reported at `level` (control/authentication/result)."""
    for rule in _RULES[level]:
        for error in errors or (IntacctErrorDetail(""),):
            if rule.errorno is not None and error.errorno != rule.errorno:
                continue
            if rule.text is not None:
                blob = " ".join((error.description, error.description2, error.correction))
                if not rule.text.search(blob):
                    continue
            return rule.exc
    return IntacctError


# Why a record of a create/update was refused, by the same kind of (errorno, text) rules:
# Intacct reuses BL01001973 for most business failures and tells them apart in the text.
# The first error that matches a rule decides. Sources: reference/intacct-api.md, section 3.
_WRITE_RULES: tuple[tuple[FailureKind, str | None, re.Pattern[str] | None], ...] = (
    (FailureKind.CONFLICT, "BL34000061", None),
    (FailureKind.CONFLICT, None, _rx(r"already exists|duplicate")),
    (FailureKind.NOT_FOUND, None, _rx(r"cannot find .* with key")),
    (FailureKind.UNKNOWN, "XL03000009", None),  # rolled back because a sibling failed
)


def write_failure_kind(errors: Sequence[IntacctErrorDetail]) -> FailureKind:
    """The kind of a refused write; `invalid` when no rule says otherwise, `unknown`
    when the gateway gave no error for the record at all."""
    if not errors:
        return FailureKind.UNKNOWN
    for kind, errorno, text in _WRITE_RULES:
        for error in errors:
            if errorno is not None and error.errorno != errorno:
                continue
            if text is not None and not text.search(
                " ".join((error.description, error.description2, error.correction))
            ):
                continue
            return kind
    return FailureKind.INVALID


def error_detail(
    errorno: str, description: str = "", description2: str = "", correction: str = ""
) -> IntacctErrorDetail:
    """Build a detail, URL-decoding `description2` (it often carries `[Support ID: ...]`)."""
    return IntacctErrorDetail(
        errorno=errorno.strip(),
        description=description.strip(),
        description2=unquote(description2).strip(),
        correction=correction.strip(),
    )


def credential_fix(exc: IntacctError) -> str | None:
    """One line naming what to fix for a credential failure; None for other failures."""
    if isinstance(exc, IntacctSenderAuthError):
        return (
            "Intacct refused the Web Services sender: check INTACCT_SENDER_ID and "
            "INTACCT_SENDER_PASSWORD, and that the company authorizes this sender (Company > "
            "Setup > Company > Security > Web Services authorizations)"
        )
    if isinstance(exc, IntacctAuthError) and not isinstance(exc, IntacctSessionInvalid):
        return (
            "Intacct refused the sign-in: check INTACCT_USER_ID, INTACCT_USER_PASSWORD and "
            "INTACCT_COMPANY_ID (repeated failures lock the user out)"
        )
    if isinstance(exc, IntacctPermissionError):
        return (
            f"the Intacct Web Services user in INTACCT_USER_ID lacks a permission ({exc}): "
            "grant it in Company > Admin > Roles (or the user's permissions)"
        )
    return None
