"""IntacctClient: sessions, transport, retries, paging and writes for the XML gateway.

One client is shared by threads. It holds one API session at a time (getAPISession
once, then the returned endpoint with the session id), keeps at most
`max_concurrent_requests` requests in flight (the gateway allows one per company), and
retries transient failures with tenacity inside a total time budget. Writes are never
resent when their outcome is unknown: `IntacctWriteOutcomeUnknown` tells the caller to
look up what exists first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import httpx
from lxml import etree
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from connector_pipeline import settings
from connector_pipeline.guarded_http import (
    ACCEPT_ENCODING,
    BodyTooLarge,
    DeadlineExceeded,
    UnsupportedEncoding,
    deadline_transport,
    parse_retry_after,
    read_capped,
    request_deadline,
)
from connector_pipeline.intacct import functions as fn
from connector_pipeline.intacct.errors import (
    IntacctDeadlineExceeded,
    IntacctError,
    IntacctMalformedResponse,
    IntacctRateLimited,
    IntacctResponseError,
    IntacctRetryAfterTooLong,
    IntacctSessionInvalid,
    IntacctTransientError,
    IntacctWriteOutcomeUnknown,
    classify,
)
from connector_pipeline.intacct.filters import (
    Filter,
    and_,
    eq,
    gt,
    in_,
    is_not_null,
    is_null,
    lt,
    or_,
)
from connector_pipeline.intacct.results import (
    QueryPage,
    WriteResult,
    key_field_for,
    map_write_results,
)
from connector_pipeline.intacct.session import Session, check_endpoint
from connector_pipeline.intacct.timefmt import UserFormatting, format_value
from connector_pipeline.intacct.xml import (
    Function,
    IntacctResponse,
    IntacctResult,
    Login,
    build_request,
    parse_response,
    redact_xml,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Order = tuple[str, bool]
Cursor = tuple[datetime, int]

TIMESTAMP_FIELDS = ("WHENMODIFIED", "WHENCREATED")
# Date-only fields (no time, no zone: "Dates in Sage Intacct do not have associated
# timezones") written in the user's date format; they come back as `date`.
DATE_FIELDS = ("WHENDUE", "WHENPAID", "WHENPOSTED")
WRITE_FUNCTIONS = frozenset({"create", "update", "delete"})
# Statuses that mean the gateway did not take the request, so even a write may be resent.
_NOT_PROCESSED_STATUSES = frozenset({429, 503})
_RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 524})
_LOG_BODY_CHARS = 4_000


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _after_key(key: tuple[str, ...], values: tuple[Any, ...]) -> Filter:
    """Records whose `key` fields sort strictly after `values`: (A, B) > (a, b) is
    A > a, or A = a and B > b."""
    first, *rest = key
    if not rest:
        return gt(first, values[0])
    return or_(
        gt(first, values[0]), and_(eq(first, values[0]), _after_key(tuple(rest), values[1:]))
    )


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# The keyset of incremental reads; records without a WHENMODIFIED sort first and would
# never move the cursor, so incremental reads leave them out.
_CHANGED_KEY = ("WHENMODIFIED", "RECORDNO")
_STAMPED = is_not_null("WHENMODIFIED")


@dataclass(frozen=True)
class _Answer:
    """An HTTP answer whose body was read in full (decompressed, under the size cap)."""

    status_code: int
    headers: httpx.Headers
    content: bytes


class _Backoff:
    """Honour Retry-After when the gateway sends one; otherwise exponential, full jitter."""

    def __init__(self, base_s: float, cap_s: float) -> None:
        self._jitter = wait_random_exponential(multiplier=base_s, max=cap_s)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, IntacctRateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._jitter(state))


def _is_retryable(exc: BaseException) -> bool:
    return (
        isinstance(exc, IntacctError)
        and exc.retryable
        and not isinstance(exc, IntacctWriteOutcomeUnknown)
    )


class IntacctClient:
    """A thread-safe client for the Sage Intacct XML gateway (see module docstring)."""

    def __init__(
        self,
        *,
        sender_id: str,
        sender_password: str,
        company_id: str,
        user_id: str,
        user_password: str,
        entity_id: str | None = None,
        endpoint_url: str = settings.DEFAULT_INTACCT_ENDPOINT_URL,
        allow_custom_endpoint: bool = False,
        timeout_s: float = settings.INTACCT_TIMEOUT_S,
        request_deadline_s: float = settings.INTACCT_REQUEST_DEADLINE_S,
        max_response_bytes: int = settings.INTACCT_MAX_RESPONSE_BYTES,
        retry_budget_s: float = settings.INTACCT_RETRY_BUDGET_S,
        max_attempts: int = settings.INTACCT_MAX_ATTEMPTS,
        backoff_base_s: float = settings.INTACCT_BACKOFF_BASE_S,
        backoff_max_s: float = settings.INTACCT_BACKOFF_MAX_S,
        session_margin_s: float = settings.INTACCT_SESSION_RENEW_MARGIN_S,
        session_max_age_s: float = settings.INTACCT_SESSION_MAX_AGE_S,
        max_concurrent_requests: int = settings.INTACCT_MAX_CONCURRENT_REQUESTS,
        user_formatting: UserFormatting | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._allow_custom = allow_custom_endpoint
        self._sleep = sleep
        self._endpoint_url = check_endpoint(endpoint_url, allow_custom=allow_custom_endpoint)
        self._request_deadline_s = request_deadline_s
        self._max_response_bytes = max_response_bytes
        self._sender_id = sender_id
        self._sender_password = sender_password
        self._login = Login(user_id, company_id, user_password, entity_id)
        self._entity_id = entity_id
        self._retry_budget_s = retry_budget_s
        self._max_attempts = max_attempts
        self._backoff = _Backoff(backoff_base_s, backoff_max_s)
        self._session_margin_s = session_margin_s
        self._session_max_age_s = session_max_age_s
        # "Now" for session age and expiry: tests move it instead of sleeping.
        self._clock = clock
        self._fixed_formatting = user_formatting
        self._formatting: UserFormatting | None = user_formatting
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 15.0)),
            headers={
                "Content-Type": settings.INTACCT_CONTENT_TYPE,
                "Accept-Encoding": ACCEPT_ENCODING,
                "User-Agent": settings.INTACCT_USER_AGENT,
            },
            transport=transport or deadline_transport(),
            # A redirect is an answer to report, never to follow with credentials in the body.
            follow_redirects=False,
        )
        self._in_flight = threading.BoundedSemaphore(max(1, max_concurrent_requests))
        self._session_lock = threading.RLock()
        self._session: Session | None = None
        self._stats_lock = threading.Lock()
        self._http_calls = 0
        self._sessions_opened = 0
        self._by_function: Counter[str] = Counter()
        self._secrets = [s for s in (sender_password, user_password) if s]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> IntacctClient:
        """Build from the INTACCT_* variables (DESIGN.md, "Names other code relies on")."""
        required = {
            "sender_id": settings.ENV_INTACCT_SENDER_ID,
            "sender_password": settings.ENV_INTACCT_SENDER_PASSWORD,
            "company_id": settings.ENV_INTACCT_COMPANY_ID,
            "user_id": settings.ENV_INTACCT_USER_ID,
            "user_password": settings.ENV_INTACCT_USER_PASSWORD,
        }
        missing = [name for name in required.values() if not environ.get(name)]
        if missing:
            raise ValueError(f"missing environment variables: {', '.join(missing)}")
        kwargs: dict[str, Any] = {key: environ[name] for key, name in required.items()}
        kwargs["entity_id"] = environ.get(settings.ENV_INTACCT_ENTITY_ID) or None
        kwargs["endpoint_url"] = (
            environ.get(settings.ENV_INTACCT_ENDPOINT_URL) or settings.DEFAULT_INTACCT_ENDPOINT_URL
        )
        kwargs["allow_custom_endpoint"] = _truthy(
            environ.get(settings.ENV_INTACCT_ALLOW_CUSTOM_ENDPOINT)
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    # ------------------------------------------------------------------ bookkeeping

    @property
    def http_calls(self) -> int:
        """HTTP requests made so far, getAPISession and failed attempts included."""
        with self._stats_lock:
            return self._http_calls

    @property
    def sessions_opened(self) -> int:
        with self._stats_lock:
            return self._sessions_opened

    def calls_by_function(self) -> dict[str, int]:
        with self._stats_lock:
            return dict(self._by_function)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IntacctClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _post(self, url: str, body: bytes, names: Sequence[str], *, write: bool) -> _Answer:
        """One HTTP POST within the overall deadline, its body read under the size cap, with
        transport failures mapped onto the exception tree."""
        with self._stats_lock:
            self._http_calls += 1
            self._by_function.update(names)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("intacct request %s: %s", names, redact_xml(body)[:_LOG_BODY_CHARS])
        started = time.perf_counter()
        waiting = f"Intacct's answer to {', '.join(names)}"
        with self._in_flight, request_deadline(self._request_deadline_s) as deadline:
            sent = False
            try:
                request = self._http.build_request("POST", url, content=body)
                response = self._http.send(request, stream=True)
                sent = True
                try:
                    answer = _Answer(
                        response.status_code,
                        response.headers,
                        read_capped(response, self._max_response_bytes),
                    )
                finally:
                    response.close()
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing reached the gateway: safe to retry, writes included.
                raise IntacctTransientError(
                    f"cannot connect to Intacct: {type(exc).__name__}"
                ) from None
            except (BodyTooLarge, UnsupportedEncoding) as exc:
                if write:
                    raise IntacctWriteOutcomeUnknown(f"unreadable {waiting}: {exc}") from None
                raise IntacctResponseError(f"refused {waiting}: {exc}") from None
            except (DeadlineExceeded, httpx.TimeoutException, httpx.TransportError) as exc:
                # `sent` is set once the answer's headers are in, so a deadline before
                # that may still have delivered a write: only reads may be resent.
                if not sent and not write and isinstance(exc, DeadlineExceeded):
                    raise IntacctTransientError(
                        f"cannot connect to Intacct within {self._request_deadline_s:g} s"
                    ) from None
                if isinstance(exc, DeadlineExceeded) or time.monotonic() >= deadline:
                    what = f"no complete {waiting} within {self._request_deadline_s:g} s"
                    if write:
                        raise IntacctWriteOutcomeUnknown(what) from None
                    raise IntacctDeadlineExceeded(what) from None
                what = f"{type(exc).__name__} waiting for {waiting}"
                if write:
                    raise IntacctWriteOutcomeUnknown(what) from None
                raise IntacctTransientError(what) from None
        elapsed = time.perf_counter() - started
        log.info("intacct %s -> HTTP %s in %.3fs", ",".join(names), answer.status_code, elapsed)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("intacct response: %s", redact_xml(answer.content)[:_LOG_BODY_CHARS])
        return answer

    def _interpret(self, response: _Answer, *, write: bool) -> IntacctResponse:
        status = response.status_code
        content_type = response.headers.get("content-type", "").lower()
        unknown = write and status not in _NOT_PROCESSED_STATUSES
        if 300 <= status < 400 or status < 200:
            # The gateway answers every request itself; a redirect (a login page, a moved
            # host) is never an empty success, and following it would resend credentials.
            location = response.headers.get("location", "nowhere")
            raise IntacctResponseError(
                f"Intacct answered HTTP {status} (redirect to {location}): check "
                f"{settings.ENV_INTACCT_ENDPOINT_URL}",
                http_status=status,
            )
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is not None and retry_after > settings.RETRY_AFTER_MAX_S:
                raise IntacctRetryAfterTooLong(
                    f"Intacct rate limit (HTTP 429) asks to wait {retry_after:g} s, longer "
                    f"than the {settings.RETRY_AFTER_MAX_S:g} s allowed",
                    retry_after=retry_after,
                    http_status=429,
                )
            errors = []
            if "xml" in content_type:
                try:
                    parse_response(response.content, http_status=status)
                except IntacctError as exc:
                    errors = exc.errors
            raise IntacctRateLimited(
                "Intacct rate limit (HTTP 429)", errors, retry_after=retry_after, http_status=429
            )
        if status != 200 and "xml" not in content_type:
            message = f"Intacct answered HTTP {status} ({content_type or 'no content type'})"
            if unknown and status >= 500:
                raise IntacctWriteOutcomeUnknown(message, http_status=status)
            if status in _RETRYABLE_STATUSES or status >= 500:
                raise IntacctTransientError(message, http_status=status)
            raise IntacctResponseError(message, http_status=status)
        try:
            parsed = parse_response(response.content, http_status=status)
        except IntacctMalformedResponse as exc:
            if write:
                raise IntacctWriteOutcomeUnknown(
                    f"unreadable answer to a write: {exc.message}", http_status=status
                ) from None
            raise
        if status != 200:
            # An XML body that reports success on an error status: trust the status.
            if unknown:
                raise IntacctWriteOutcomeUnknown(f"HTTP {status} with an XML body")
            raise IntacctTransientError(f"HTTP {status} with an XML body", http_status=status)
        return parsed

    def _request(
        self, url: str, functions: Sequence[Function], *, login: bool, session: Session | None
    ) -> IntacctResponse:
        body = build_request(
            sender_id=self._sender_id,
            sender_password=self._sender_password,
            control_id=uuid.uuid4().hex,
            functions=functions,
            session_id=None if login else session.session_id if session else None,
            login=self._login if login else None,
        )
        names = [f.name for f in functions]
        write = any(name in WRITE_FUNCTIONS for name in names)
        return self._interpret(self._post(url, body, names, write=write), write=write)

    # ------------------------------------------------------------------ sessions

    def _open_session(self) -> Session:
        control_id = uuid.uuid4().hex
        response = self._request(
            self._endpoint_url,
            [Function(control_id, fn.get_api_session(self._entity_id))],
            login=True,
            session=None,
        )
        result = response.result_for(control_id)
        result.raise_for_status()
        api = result.records[0] if result.records else {}
        session_id = str(api.get("sessionid", "")).strip()
        if not session_id:
            raise IntacctResponseError("getAPISession returned no session id")
        endpoint = str(api.get("endpoint", "")).strip() or self._endpoint_url
        try:
            endpoint = check_endpoint(
                endpoint, allow_custom=self._allow_custom, configured=self._endpoint_url
            )
        except ValueError as exc:
            raise IntacctResponseError(str(exc)) from None
        session = Session(
            session_id, endpoint, str(api.get("locationid", "") or ""), issued_at=self._clock()
        )
        if response.authentication is not None:
            session.observe_timeout(response.authentication.session_timeout)
        self._secrets.append(session_id)
        with self._stats_lock:
            self._sessions_opened += 1
        session.formatting = self._fixed_formatting or self._read_user_formatting(session)
        self._formatting = session.formatting
        log.info("intacct session opened (endpoint %s)", endpoint)
        return session

    def _read_user_formatting(self, session: Session) -> UserFormatting:
        control_id = uuid.uuid4().hex
        response = self._request(
            session.endpoint,
            [Function(control_id, fn.read_user_formatting())],
            login=False,
            session=session,
        )
        if response.authentication is not None:
            session.observe_timeout(response.authentication.session_timeout)
        result = response.result_for(control_id)
        result.raise_for_status()
        return UserFormatting.from_record(result.records[0] if result.records else {})

    def _current_session(self) -> Session:
        with self._session_lock:
            session = self._session
            if session is None or not session.usable(
                margin_s=self._session_margin_s,
                max_age_s=self._session_max_age_s,
                now=self._clock(),
            ):
                session = self._session = self._open_session()
            return session

    def _drop_session(self, session: Session) -> None:
        with self._session_lock:
            if self._session is session:
                self._session = None

    @property
    def session_endpoint(self) -> str:
        """The endpoint getAPISession returned (opens a session if needed)."""
        return self._current_session().endpoint

    @property
    def formatting(self) -> UserFormatting:
        """The API user's date format and time zone (opens a session if needed)."""
        if self._formatting is None:
            self.execute(lambda _f: [fn.read_user_formatting()])
        assert self._formatting is not None
        return self._formatting

    # ------------------------------------------------------------------ execution

    def _attempt(self, build: Callable[[Session], Sequence[Function]]) -> list[IntacctResult]:
        session = self._current_session()
        for replay in (False, True):
            functions = build(session)
            try:
                response = self._request(session.endpoint, functions, login=False, session=session)
            except IntacctSessionInvalid:
                # The gateway refused the session before running anything: renew, replay once.
                self._drop_session(session)
                if replay:
                    raise
                log.info("intacct session invalid; renewing and replaying once")
                session = self._current_session()
                continue
            if response.authentication is not None:
                session.observe_timeout(response.authentication.session_timeout)
            by_id = {r.control_id: r for r in response.results}
            results = [
                by_id.get(f.control_id) or response.result_for(f.control_id) for f in functions
            ]
            _raise_transient_results(results)
            return results
        raise AssertionError("unreachable")

    def execute(
        self, build: Callable[[UserFormatting], Sequence[etree._Element]]
    ) -> list[IntacctResult]:
        """Run functions in one request with retries; `build` gets the user's formatting so
        filter values can be written in the user's zone. Results come back in order,
        failures included (nothing is raised for a failed function)."""

        def make(session: Session) -> list[Function]:
            formatting = session.formatting or UserFormatting()
            return [Function(uuid.uuid4().hex, body) for body in build(formatting)]

        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self._max_attempts) | stop_before_delay(self._retry_budget_s),
            wait=self._backoff,
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, make)
        except IntacctError as exc:
            exc.args = (self._scrub(str(exc)),)
            exc.message = self._scrub(exc.message)
            raise

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "intacct attempt %d failed (%s); retrying in %.2fs",
            state.attempt_number,
            type(exc).__name__,
            wait,
        )

    def _call(self, build: Callable[[UserFormatting], etree._Element]) -> IntacctResult:
        (result,) = self.execute(lambda formatting: [build(formatting)])
        if result.ok:
            return result
        try:
            result.raise_for_status()
        except IntacctError as exc:
            exc.args = (self._scrub(str(exc)),)
            raise
        return result

    def _call_element(self, body: etree._Element) -> IntacctResult:
        """`_call` for a body that does not depend on the user's formatting."""
        return self._call(lambda _formatting: body)

    # ------------------------------------------------------------------ records

    def _convert(self, record: dict[str, Any], formatting: UserFormatting) -> dict[str, Any]:
        out = dict(record)
        for name in TIMESTAMP_FIELDS:
            value = out.get(name)
            if isinstance(value, str):
                out[name] = formatting.parse_timestamp(value) if value.strip() else None
        for name in DATE_FIELDS:
            value = out.get(name)
            # Text that is no date stays text: the caller quarantines the record, naming it.
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    out[name] = formatting.parse_date(value) if value.strip() else None
        recordno = out.get("RECORDNO")
        if isinstance(recordno, str) and recordno.strip().lstrip("-").isdigit():
            out["RECORDNO"] = int(recordno)
        return out

    def _converted(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        formatting = self.formatting
        return [self._convert(r, formatting) for r in records]

    # ------------------------------------------------------------------ reading

    def query(
        self,
        object_name: str,
        fields: Sequence[str],
        filter: Filter | None = None,
        orderby: Sequence[Order] | None = None,
        page_size: int = settings.INTACCT_QUERY_MAX_PAGESIZE,
        offset: int = 0,
    ) -> QueryPage:
        """One page of the `query` function. Datetime filter values are written in the user's
        zone; WHENMODIFIED/WHENCREATED come back as aware UTC datetimes, RECORDNO as int."""
        if not 1 <= page_size <= settings.INTACCT_QUERY_MAX_PAGESIZE:
            raise ValueError(f"query page_size must be 1..{settings.INTACCT_QUERY_MAX_PAGESIZE}")
        if offset < 0:
            raise ValueError("offset must be >= 0")
        if not fields:
            raise ValueError("query needs at least one field: returning all fields is unsupported")
        result = self._call(
            lambda formatting: fn.query(
                object_name,
                fields,
                filter=filter,
                orderby=orderby or (),
                pagesize=page_size,
                offset=offset,
                format_value=lambda v: format_value(v, formatting),
            )
        )
        records = self._converted(result.records)
        return QueryPage(
            records=records,
            count=result.count if result.count is not None else len(records),
            total_count=result.total_count,
            num_remaining=result.num_remaining,
            offset=result.offset if result.offset is not None else offset,
        )

    def iter_changed(
        self,
        object_name: str,
        fields: Sequence[str],
        after: Cursor | None = None,
        *,
        page_size: int = settings.INTACCT_QUERY_MAX_PAGESIZE,
        until: datetime | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of records ordered by (WHENMODIFIED, RECORDNO), strictly after `after`.

        Each page restarts the query from the last record seen (a keyset), never from an
        offset, so a record modified meanwhile moves behind the cursor and is read once at
        its new position instead of shifting pages and being skipped. `until` (exclusive)
        bounds WHENMODIFIED from above: timestamps have one-second precision, so callers
        that store the cursor should stop a little before "now".

        Records whose WHENMODIFIED is empty (migrated data can have none) cannot be placed
        on that keyset. A full read (`after=None`) yields them first, in RECORDNO order, so
        a caller that advances its cursor with the stamped pages has read them before its
        cursor first moves; an incremental read does not see them again (a change to one
        stamps it).
        """
        wanted = list(fields)
        for required in ("RECORDNO", "WHENMODIFIED"):
            if required not in wanted:
                wanted.append(required)
        if after is None:
            yield from self._keyset_pages(
                object_name, wanted, ("RECORDNO",), is_null("WHENMODIFIED"), page_size
            )
        bound = lt("WHENMODIFIED", until) if until is not None else None
        yield from self._keyset_pages(
            object_name, wanted, _CHANGED_KEY, and_(_STAMPED, bound), page_size, after
        )

    def iter_changed_together(
        self,
        requests: Mapping[str, tuple[Sequence[str], Cursor | None]],
        *,
        page_size: int = settings.INTACCT_QUERY_MAX_PAGESIZE,
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """`iter_changed` for several objects at once, as (object, page) pairs: the first
        pages of the incremental reads (a cursor given) go in one request, so a day on
        which nothing changed costs one call however many objects are read. An object read
        from the start (no cursor) is read on its own, as `iter_changed` does."""
        for obj, (fields, after) in requests.items():
            if after is None:
                for page in self.iter_changed(obj, fields, None, page_size=page_size):
                    yield obj, page
        incremental = {
            obj: ([*fields, *(k for k in _CHANGED_KEY if k not in fields)], after)
            for obj, (fields, after) in requests.items()
            if after is not None
        }
        if incremental:
            yield from self._changed_together(incremental, page_size)

    def _changed_together(
        self, incremental: Mapping[str, tuple[list[str], Cursor]], page_size: int
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """One request with the first page of each object's incremental read, then each
        object's further pages on its own keyset."""

        def build(formatting: UserFormatting) -> list[etree._Element]:
            return [
                fn.query(
                    obj,
                    fields,
                    filter=and_(_STAMPED, _after_key(_CHANGED_KEY, tuple(after))),
                    orderby=[(name, True) for name in _CHANGED_KEY],
                    pagesize=page_size,
                    offset=0,
                    format_value=lambda v: format_value(v, formatting),
                )
                for obj, (fields, after) in incremental.items()
            ]

        results = self.execute(build)
        for result in results:
            result.raise_for_status()
        for (obj, (fields, _)), result in zip(incremental.items(), results, strict=True):
            records = [
                r
                for r in self._converted(result.records)
                if all(r.get(name) is not None for name in _CHANGED_KEY)
            ]
            if records:
                yield obj, records
            if len(result.records) < page_size or result.num_remaining == 0 or not records:
                continue
            last = tuple(records[-1][name] for name in _CHANGED_KEY)
            for page in self._keyset_pages(obj, fields, _CHANGED_KEY, _STAMPED, page_size, last):
                yield obj, page

    def _keyset_pages(
        self,
        object_name: str,
        fields: list[str],
        key: tuple[str, ...],
        where: Filter,
        page_size: int,
        after: tuple[Any, ...] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of the records matching `where`, ordered by the `key` fields and strictly
        after the key values `after`; each page starts from the last record seen."""
        while True:
            keyset = _after_key(key, after) if after is not None else None
            page = self.query(
                object_name,
                fields,
                filter=and_(where, keyset),
                orderby=[(name, True) for name in key],
                page_size=page_size,
            )
            records = [r for r in page.records if all(r.get(name) is not None for name in key)]
            if records:
                yield records
                after = tuple(records[-1][name] for name in key)
            if not page.records or page.num_remaining == 0 or len(page.records) < page_size:
                return

    def query_all(
        self,
        object_name: str,
        fields: Sequence[str],
        filter: Filter | None = None,
        *,
        page_size: int = settings.INTACCT_QUERY_MAX_PAGESIZE,
    ) -> list[dict[str, Any]]:
        """Every record matching `filter`, paged by offset in key order (for small, stable
        result sets such as an `in` lookup; use `iter_changed` for whole objects)."""
        key = key_field_for(object_name)
        wanted = list(fields) if key in fields else [*fields, key]
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.query(
                object_name, wanted, filter, [(key, True)], page_size=page_size, offset=offset
            )
            out.extend(page.records)
            offset += len(page.records)
            if not page.records or not page.num_remaining:
                return out

    def query_in(
        self, object_name: str, field: str, values: Sequence[Any], fields: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Records whose `field` is one of `values` (chunks of <= 1,000 values, all pages)."""
        out: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(values))
        for chunk in _chunks(unique, settings.INTACCT_MAX_IN_VALUES):
            out.extend(self.query_all(object_name, fields, in_(field, chunk)))
        return out

    def read(
        self, object_name: str, keys: Sequence[Any], fields: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Records by key (RECORDNO, or `id` for custom objects), <= 100 keys per call."""
        out: list[dict[str, Any]] = []
        for chunk in _chunks(list(keys), settings.INTACCT_MAX_KEYS_PER_READ):
            result = self._call_element(fn.read(object_name, chunk, fields))
            out.extend(self._converted(result.records))
        return out

    def iter_read_by_query(
        self,
        object_name: str,
        fields: Sequence[str] = (),
        query_text: str = "",
        *,
        page_size: int = settings.INTACCT_READBYQUERY_MAX_PAGESIZE,
    ) -> Iterator[list[dict[str, Any]]]:
        """Legacy readByQuery, then readMore on the resultId until nothing remains."""
        if not 1 <= page_size <= settings.INTACCT_READBYQUERY_MAX_PAGESIZE:
            raise ValueError(
                f"readByQuery page_size must be 1..{settings.INTACCT_READBYQUERY_MAX_PAGESIZE}"
            )
        result = self._call(lambda _f: fn.read_by_query(object_name, fields, query_text, page_size))
        while True:
            if result.records:
                yield self._converted(result.records)
            if not result.num_remaining or not result.result_id:
                return
            result_id = result.result_id
            result = self._call_element(fn.read_more(result_id))

    def read_by_query(
        self,
        object_name: str,
        fields: Sequence[str] = (),
        query_text: str = "",
        *,
        page_size: int = settings.INTACCT_READBYQUERY_MAX_PAGESIZE,
    ) -> list[dict[str, Any]]:
        return [
            record
            for page in self.iter_read_by_query(
                object_name, fields, query_text, page_size=page_size
            )
            for record in page
        ]

    def lookup(self, object_name: str) -> dict[str, Any]:
        """The object's definition (fields, types, relationships) as nested dicts."""
        result = self._call(lambda _f: fn.lookup(object_name))
        return result.records[0] if result.records else {}

    # ------------------------------------------------------------------ writing

    def _write(
        self, verb: str, object_name: str, records: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        builder = fn.create if verb == "create" else fn.update
        outcomes: list[WriteResult] = []
        size = settings.INTACCT_MAX_RECORDS_PER_WRITE
        for start in range(0, len(records), size):
            chunk = records[start : start + size]

            def build(formatting: UserFormatting, chunk: Sequence[Mapping[str, Any]] = chunk):
                prepared = [_prepare(r, formatting) for r in chunk]
                return [builder(object_name, prepared)]

            (result,) = self.execute(build)
            if not result.ok and not result.records:
                # Nothing was written; a transient cause (try again later) is retryable.
                try:
                    result.raise_for_status()
                except IntacctTransientError:
                    raise
                except IntacctError:
                    pass
            formatting = self.formatting
            mapped = map_write_results(object_name, chunk, result, base_index=start)
            outcomes.extend(
                WriteResult(
                    w.index,
                    w.ok,
                    w.key,
                    self._convert(w.record, formatting) if w.record else None,
                    w.errors,
                )
                for w in mapped
            )
        return outcomes

    def create(self, object_name: str, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """Create records, <= 100 per function. `result[i]` belongs to `records[i]`.

        Raises IntacctWriteOutcomeUnknown when an answer was lost; do not simply call again.
        """
        return self._write("create", object_name, records)

    def update(self, object_name: str, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """Update records (each carries its key: RECORDNO, or `id` for custom objects)."""
        return self._write("update", object_name, records)

    def delete(self, object_name: str, keys: Sequence[Any]) -> None:
        for chunk in _chunks(list(keys), settings.INTACCT_MAX_KEYS_PER_READ):
            self._call_element(fn.delete(object_name, chunk))


def _raise_transient_results(results: Sequence[IntacctResult]) -> None:
    """Raise (so the retry loop sees it) a function failure that says "try again later"
    and wrote nothing; business failures are left to the caller."""
    for result in results:
        if result.ok or result.records:
            continue
        exc_type = classify("result", result.errors)
        if issubclass(exc_type, IntacctTransientError):
            raise exc_type(
                f"Result status: {result.status} for function {result.function}",
                result.errors,
                control_id=result.control_id,
            )


def _prepare(record: Mapping[str, Any], formatting: UserFormatting) -> dict[str, Any]:
    """Write datetimes in the user's zone and format, recursively."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            out[key] = _prepare(value, formatting)
        elif isinstance(value, date):
            out[key] = format_value(value, formatting)
        else:
            out[key] = value
    return out
