"""Sender and user authentication of the sandbox gateway, and its API sessions.

A wrong sender (Web Services partner) password is a *control* failure: the whole
request fails in `<control>` (fixture control_failure_bad_sender_credentials.xml). A
wrong user password is an *authentication* failure inside `<operation>` (fixture
auth_failure_bad_login.xml). Clients and `ml-connector check` tell the two apart by
exactly that, so the sandbox keeps them distinct.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from connector_pipeline.sandbox.intacct_envelope import text_of


@dataclass
class SandboxSession:
    session_id: str
    location_id: str
    created: datetime
    expires: datetime


@dataclass(frozen=True)
class Credentials:
    sender_id: str
    sender_password: str
    company_id: str
    user_id: str
    user_password: str


@dataclass(frozen=True)
class AuthFailure:
    user_id: str
    company_id: str
    message: str


@dataclass(frozen=True)
class Authenticated:
    location_id: str
    session: SandboxSession | None  # None when the request signed in with a login


def sender_ok(credentials: Credentials, sender_id: str, password: str) -> bool:
    return (sender_id, password) == (credentials.sender_id, credentials.sender_password)


class SessionStore:
    """Open sessions by id; a session's timeout slides with each request, as Intacct's does."""

    def __init__(self) -> None:
        self.sessions: dict[str, SandboxSession] = {}
        self.opened = 0

    def open(self, location_id: str, now: datetime, timeout_s: float) -> SandboxSession:
        session = SandboxSession(
            session_id=secrets.token_urlsafe(24) + "..",
            location_id=location_id,
            created=now,
            expires=now + timedelta(seconds=timeout_s),
        )
        self.sessions[session.session_id] = session
        self.opened += 1
        return session

    def use(
        self, session_id: str, now: datetime, timeout_s: float, *, invalidate: bool = False
    ) -> SandboxSession | None:
        session = self.sessions.get(session_id)
        if session is not None and (invalidate or session.expires <= now):
            del self.sessions[session_id]
            session = None
        if session is not None:
            session.expires = now + timedelta(seconds=timeout_s)
        return session


def authenticate(
    auth: etree._Element,
    credentials: Credentials,
    store: SessionStore,
    now: datetime,
    timeout_s: float,
    *,
    invalidate_session: bool = False,
) -> Authenticated | AuthFailure:
    """Check `<authentication>`: a `<login>` with user credentials, or a `<sessionid>`."""
    login = auth.find("login")
    if login is not None:
        user, company = text_of(login, "userid"), text_of(login, "companyid")
        given = (user, company, text_of(login, "password"))
        expected = (credentials.user_id, credentials.company_id, credentials.user_password)
        if given != expected:
            return AuthFailure(user, company, "Sign-in information is incorrect")
        return Authenticated(text_of(login, "locationid"), None)
    session_id = text_of(auth, "sessionid")
    session = store.use(session_id, now, timeout_s, invalidate=invalidate_session)
    if session is None:
        shown = f"{session_id[:1]}...." if session_id else ""
        return AuthFailure("", "", f"Invalid session {shown}".strip())
    return Authenticated(session.location_id, session)
