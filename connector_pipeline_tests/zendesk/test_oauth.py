"""The OAuth authorization-code flow with state and PKCE against the sandbox, from the
library and from `ml-connector zendesk oauth`."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner

from connector_pipeline.cli import main
from connector_pipeline.zendesk import ZendeskAuthError, ZendeskClient, oauth
from connector_pipeline_tests.zendesk.conftest import FAST_CLIENT, RunningSandbox

REDIRECT = "http://127.0.0.1:9/callback"


def _approve(url: str) -> str:
    """What the browser does: open the page and land on the redirect."""
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


def test_pkce_pair() -> None:
    pair = oauth.new_pkce()
    assert 43 <= len(pair.verifier) <= 128
    assert pair.challenge == oauth.pkce_challenge(pair.verifier) and "=" not in pair.challenge
    assert oauth.new_state() != oauth.new_state()


def test_code_flow_then_bearer_calls_then_refresh(zendesk: RunningSandbox) -> None:
    account = oauth.account_url(base_url=zendesk.url)
    pkce, state = oauth.new_pkce(), oauth.new_state()
    url = oauth.authorization_url(
        account,
        client_id="ml-connector-public",
        redirect_uri=REDIRECT,
        state=state,
        code_challenge=pkce.challenge,
        scope="read write",
    )
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"] == [state]
    landed = _approve(url)
    with pytest.raises(ZendeskAuthError, match="state"):
        oauth.parse_redirect(landed, "forged-state")
    code = oauth.parse_redirect(landed, state)

    tokens = oauth.exchange_code(
        account,
        client_id="ml-connector-public",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=pkce.verifier,
    )
    assert tokens.token_type == "bearer" and tokens.refresh_token
    assert tokens.access_token not in repr(tokens)
    client = ZendeskClient(base_url=zendesk.url, oauth_token=tokens.access_token, **FAST_CLIENT)
    org = client.create_organization({"name": "Via OAuth"})
    assert client.show_organization(org["id"])["name"] == "Via OAuth"
    client.close()

    with pytest.raises(ZendeskAuthError, match="invalid_grant"):  # a code works once
        oauth.exchange_code(
            account,
            client_id="ml-connector-public",
            code=code,
            redirect_uri=REDIRECT,
            code_verifier=pkce.verifier,
        )
    renewed = oauth.refresh_tokens(
        account, client_id="ml-connector-public", refresh_token=str(tokens.refresh_token)
    )
    assert renewed.access_token != tokens.access_token
    with pytest.raises(ZendeskAuthError):  # refresh tokens rotate
        oauth.refresh_tokens(
            account, client_id="ml-connector-public", refresh_token=str(tokens.refresh_token)
        )


def test_wrong_verifier_and_wrong_secret_are_refused(zendesk: RunningSandbox) -> None:
    account = oauth.account_url(base_url=zendesk.url)
    pkce, state = oauth.new_pkce(), oauth.new_state()
    url = oauth.authorization_url(
        account,
        client_id="ml-connector",
        redirect_uri=REDIRECT,
        state=state,
        code_challenge=pkce.challenge,
    )
    code = oauth.parse_redirect(_approve(url), state)
    with pytest.raises(ZendeskAuthError, match="client"):
        oauth.exchange_code(
            account,
            client_id="ml-connector",
            client_secret="wrong",
            code=code,
            redirect_uri=REDIRECT,
            code_verifier=pkce.verifier,
        )
    with pytest.raises(ZendeskAuthError, match="code_verifier"):
        oauth.exchange_code(
            account,
            client_id="ml-connector",
            client_secret="sandbox-oauth-secret",
            code=code,
            redirect_uri=REDIRECT,
            code_verifier=oauth.new_pkce().verifier,
        )


def test_read_only_scope_cannot_write(zendesk: RunningSandbox) -> None:
    account = oauth.account_url(base_url=zendesk.url)
    pkce, state = oauth.new_pkce(), oauth.new_state()
    url = oauth.authorization_url(
        account,
        client_id="ml-connector-public",
        redirect_uri=REDIRECT,
        state=state,
        code_challenge=pkce.challenge,
        scope="read",
    )
    tokens = oauth.exchange_code(
        account,
        client_id="ml-connector-public",
        code=oauth.parse_redirect(_approve(url), state),
        redirect_uri=REDIRECT,
        code_verifier=pkce.verifier,
    )
    client = ZendeskClient(base_url=zendesk.url, oauth_token=tokens.access_token, **FAST_CLIENT)
    assert client.show_many_organizations(ids=[1]) == []
    with pytest.raises(ZendeskAuthError) as caught:
        client.create_organization({"name": "nope"})
    assert caught.value.status == 403
    client.close()


def test_cli_authorize_exchange_refresh(
    zendesk: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_HOME", str(tmp_path))
    env = {"ZENDESK_BASE_URL": zendesk.url, "ZENDESK_OAUTH_CLIENT_ID": "ml-connector"}
    runner = CliRunner()
    started = runner.invoke(
        main, ["zendesk", "oauth", "authorize-url", "--redirect-uri", REDIRECT], env=env
    )
    assert started.exit_code == 0, started.output
    url = started.stdout.strip().splitlines()[0]
    pending = tmp_path / "zendesk_oauth_pending.json"
    assert pending.stat().st_mode & 0o777 == 0o600
    landed = _approve(url)
    exchanged = runner.invoke(
        main,
        ["zendesk", "oauth", "exchange", "--redirected-url", landed],
        env={**env, "ZENDESK_OAUTH_CLIENT_SECRET": "sandbox-oauth-secret"},
    )
    assert exchanged.exit_code == 0, exchanged.output
    tokens = json.loads(exchanged.stdout)
    assert tokens["access_token"] and tokens["refresh_token"] and not pending.exists()
    # The refresh token from the environment, so it stays out of argv and shell history.
    refreshed = runner.invoke(
        main,
        ["zendesk", "oauth", "refresh"],
        env={
            **env,
            "ZENDESK_OAUTH_CLIENT_SECRET": "sandbox-oauth-secret",
            "ZENDESK_OAUTH_REFRESH_TOKEN": tokens["refresh_token"],
        },
    )
    assert refreshed.exit_code == 0, refreshed.output
    assert json.loads(refreshed.stdout)["access_token"] != tokens["access_token"]
    again = runner.invoke(main, ["zendesk", "oauth", "exchange", "--code", "x"], env=env)
    assert again.exit_code != 0 and "authorize-url" in again.output
