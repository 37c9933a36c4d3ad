"""`ml-connector zendesk oauth ...`: obtain and refresh OAuth tokens for the connector.

`authorize-url` prints the page to open and remembers `state` and the PKCE verifier in
`ML_CONNECTOR_HOME` (mode 0600); `exchange` takes the URL the browser was sent back to (or
the bare code), checks `state` and swaps the code for tokens; `refresh` renews them. Tokens
are printed as JSON on stdout, for the operator to store as `ZENDESK_OAUTH_TOKEN`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from connector_pipeline import settings
from connector_pipeline.zendesk import oauth
from connector_pipeline.zendesk.errors import ZendeskError

_account_options = [
    click.option("--base-url", envvar=settings.ENV_ZENDESK_BASE_URL, default=None),
    click.option("--subdomain", envvar=settings.ENV_ZENDESK_SUBDOMAIN, default=None),
    click.option("--client-id", envvar=settings.ENV_ZENDESK_OAUTH_CLIENT_ID, required=True),
]


def _with_account(func: Any) -> Any:
    for option in reversed(_account_options):
        func = option(func)
    return func


def _account(base_url: str | None, subdomain: str | None) -> str:
    try:
        return oauth.account_url(base_url=base_url, subdomain=subdomain)
    except ValueError as exc:
        raise click.UsageError("set --base-url/ZENDESK_BASE_URL or --subdomain") from exc


def _pending_path() -> Path:
    return settings.ml_connector_home() / settings.ZENDESK_OAUTH_PENDING_FILE


def _save_pending(data: dict[str, str]) -> Path:
    path = _pending_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return path


def _emit(tokens: oauth.OAuthTokens) -> None:
    click.echo(json.dumps(tokens.as_dict(), indent=2))


@click.group("zendesk")
def zendesk_group() -> None:
    """Zendesk account tools."""


@zendesk_group.group("oauth")
def oauth_group() -> None:
    """OAuth authorization-code flow (state + PKCE), code exchange and refresh."""


@oauth_group.command("authorize-url")
@_with_account
@click.option("--redirect-uri", required=True, help="Must match the OAuth client's setting.")
@click.option("--scope", default=settings.ZENDESK_OAUTH_DEFAULT_SCOPE, show_default=True)
def authorize_url(
    base_url: str | None, subdomain: str | None, client_id: str, redirect_uri: str, scope: str
) -> None:
    """Print the authorization URL to open in a browser (signed in as an admin)."""
    account = _account(base_url, subdomain)
    pkce = oauth.new_pkce()
    state = oauth.new_state()
    path = _save_pending(
        {
            "account": account,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_verifier": pkce.verifier,
        }
    )
    click.echo(
        oauth.authorization_url(
            account,
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=state,
            code_challenge=pkce.challenge,
            scope=scope,
        )
    )
    click.echo(f"(state and PKCE verifier kept in {path}; run `exchange` within 120 s)", err=True)


@oauth_group.command("exchange")
@click.option("--redirected-url", default=None, help="The URL the browser came back to.")
@click.option("--code", default=None, help="The bare code, if you have no redirected URL.")
@click.option("--client-secret", envvar=settings.ENV_ZENDESK_OAUTH_CLIENT_SECRET, default=None)
def exchange(redirected_url: str | None, code: str | None, client_secret: str | None) -> None:
    """Swap the authorization code for tokens (checks `state` against authorize-url's)."""
    path = _pending_path()
    if not path.exists():
        raise click.UsageError("no pending authorization: run `authorize-url` first")
    pending = json.loads(path.read_text())
    try:
        if redirected_url:
            code = oauth.parse_redirect(redirected_url, pending["state"])
        if not code:
            raise click.UsageError("pass --redirected-url or --code")
        tokens = oauth.exchange_code(
            pending["account"],
            client_id=pending["client_id"],
            client_secret=client_secret,
            code=code,
            redirect_uri=pending["redirect_uri"],
            code_verifier=pending["code_verifier"],
        )
    except ZendeskError as exc:
        raise click.ClickException(str(exc)) from exc
    path.unlink(missing_ok=True)
    _emit(tokens)


@oauth_group.command("refresh")
@_with_account
@click.option(
    "--refresh-token",
    envvar=settings.ENV_ZENDESK_OAUTH_REFRESH_TOKEN,
    required=True,
    help=f"The refresh token (or {settings.ENV_ZENDESK_OAUTH_REFRESH_TOKEN}: keeps it out of "
    "shell history and the process list).",
)
@click.option("--client-secret", envvar=settings.ENV_ZENDESK_OAUTH_CLIENT_SECRET, default=None)
def refresh(
    base_url: str | None,
    subdomain: str | None,
    client_id: str,
    refresh_token: str,
    client_secret: str | None,
) -> None:
    """Trade a refresh token for a new access token."""
    try:
        tokens = oauth.refresh_tokens(
            _account(base_url, subdomain),
            client_id=client_id,
            refresh_token=refresh_token,
            client_secret=client_secret,
        )
    except ZendeskError as exc:
        raise click.ClickException(str(exc)) from exc
    _emit(tokens)
