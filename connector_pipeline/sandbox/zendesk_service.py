"""What one running sandbox Zendesk is: its state, webhook dispatcher, fault injector and
OAuth grants, and who an Authorization header belongs to."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

from connector_pipeline.sandbox.faults import FaultInjector
from connector_pipeline.sandbox.zendesk_state import SandboxState, ZendeskSandboxConfig
from connector_pipeline.sandbox.zendesk_webhooks import WebhookDispatcher, ticket_events


@dataclass
class OAuthGrant:
    client_id: str
    scope: str
    expires: float
    redirect_uri: str = ""
    code_challenge: str | None = None
    code_challenge_method: str | None = None


@dataclass
class ZendeskSandbox:
    """Everything an in-process test may want to reach: `app.state.sandbox`."""

    config: ZendeskSandboxConfig
    state: SandboxState
    webhooks: WebhookDispatcher
    faults: FaultInjector
    codes: dict[str, OAuthGrant] = field(default_factory=dict)
    access_tokens: dict[str, OAuthGrant] = field(default_factory=dict)
    refresh_tokens: dict[str, OAuthGrant] = field(default_factory=dict)

    def on_ticket_event(self, action: str, ticket: dict[str, Any], changes: list[Any]) -> None:
        for envelope in ticket_events(self.config, action, ticket, changes):
            self.webhooks.enqueue(envelope)

    def reset(self) -> None:
        self.state.reset()
        self.webhooks.reset()
        self.codes.clear()
        self.access_tokens.clear()
        self.refresh_tokens.clear()

    def close(self) -> None:
        self.webhooks.close()

    # --- auth ---

    def role_for(self, authorization: str) -> tuple[str | None, str | None]:
        """(role, scope) for an Authorization header; role None means 401."""
        kind, _, credential = authorization.partition(" ")
        if kind.lower() == "basic":
            try:
                user, _, token = base64.b64decode(credential).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None, None
            email, _, suffix = user.partition("/")
            if suffix != "token":
                return None, None
            if (email, token) == (self.config.email, self.config.api_token):
                return self.config.user_role, None
            if (email, token) == (self.config.agent_email, self.config.agent_api_token):
                return "agent", None
            return None, None
        if kind.lower() == "bearer":
            grant = self.access_tokens.get(credential.strip())
            if grant is None or grant.expires < time.time():
                return None, None
            return self.config.user_role, grant.scope
        return None, None
