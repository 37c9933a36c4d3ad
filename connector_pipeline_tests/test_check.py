"""`ml-connector check` against the sandboxes (issue 11, section 1): a correct setup passes;
each broken setup fails with the right row and fix; nothing is written; no secret is
printed; one sign-in attempt at most."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector_pipeline import settings
from connector_pipeline.check import run_checks
from connector_pipeline.check.rows import CheckRow
from connector_pipeline.check.zendesk import receiver_webhook_row
from connector_pipeline.cli import main
from connector_pipeline.sandbox.intacct import IntacctSandboxConfig
from connector_pipeline.sandbox.scenario import RunningSandboxes, run_sandboxes
from connector_pipeline.sandbox.zendesk import ZendeskSandboxConfig
from connector_pipeline.staging import StagingStore
from connector_pipeline.zendesk import ZendeskClient
from connector_pipeline_tests.hostile import Handler, Seen, hostile_server
from connector_pipeline_tests.support import REPO_ROOT, free_port

SECRET_NAMES = (
    settings.ENV_INTACCT_SENDER_PASSWORD,
    settings.ENV_INTACCT_USER_PASSWORD,
    settings.ENV_ZENDESK_API_TOKEN,
    settings.ENV_ZENDESK_WEBHOOK_SECRETS,
)
MAPPING_WITH_FIELD = """
organization:
  organization_fields:
    intacct_vendor_id: "{ID}"
"""


@contextmanager
def sandboxes(
    intacct: IntacctSandboxConfig | None = None, zendesk: ZendeskSandboxConfig | None = None
) -> Iterator[RunningSandboxes]:
    with run_sandboxes(intacct_config=intacct, zendesk_config=zendesk) as running:
        yield running


@pytest.fixture
def home(tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    """A migrated ledger and a Dagster home holding the dagster.yaml template."""
    StagingStore.open(sqlite_url).dispose()
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    return {settings.ENV_STAGING_DATABASE_URL: sqlite_url, "DAGSTER_HOME": str(dagster_home)}


def rows_of(env: dict[str, str], **options: Any) -> dict[str, CheckRow]:
    return {f"{r.system}: {r.check}": r for r in run_checks(env, **options)}


def statuses(rows: dict[str, CheckRow]) -> dict[str, str]:
    return {key: row.status for key, row in rows.items()}


def writes(s: RunningSandboxes) -> tuple[Any, Any]:
    with s.intacct() as c:
        intacct = c.get("/_sandbox/stats").json()["writes"]
    with s.zendesk() as c:
        zendesk = c.get("/_sandbox/organizations").json()
    return intacct, zendesk


def test_a_correct_setup_passes(home: dict[str, str]) -> None:
    with sandboxes() as s:
        env = {**s.env, **home}
        # A correct setup includes the standing fields the default mapping names.
        setup = CliRunner().invoke(main, ["setup", "zendesk"], env=env)
        assert setup.exit_code == 0, setup.output
        before = writes(s)
        result = CliRunner().invoke(main, ["check"], env=env)
        assert result.exit_code == 0, result.output
        assert "FAIL" not in result.output
        as_json = CliRunner().invoke(main, ["check", "--json"], env=env)
        assert as_json.exit_code == 0, as_json.output
        report = json.loads(as_json.output)
        assert report["ok"] is True
        rows = {f"{r['system']}: {r['check']}": r["status"] for r in report["checks"]}
        assert writes(s) == before  # reads only
    for key in (
        "intacct: sender authorization",
        "intacct: user sign-in",
        "intacct: user formatting",
        "intacct: read permission on VENDOR",
        "intacct: read permission on APBILL",
        "intacct: read permission on APPYMT",
        "intacct: ticket custom object",
        "intacct: ticket object fields",
        "intacct: ticket object relationship to VENDOR",
        "intacct: ticket object read",
        "zendesk: authentication",
        "zendesk: user role",
        "zendesk: incremental export access",
        "zendesk: permission to write organizations",
        "zendesk: organization fields",
        "zendesk: standing organization fields",
        "zendesk: webhook signing secret",
        "ledger: reachable and migrated",
        "dagster: instance configuration",
    ):
        assert rows[key] == "pass", key
    assert rows["intacct: session endpoint"] == "warn"  # the sandbox is not *.intacct.com
    for name in SECRET_NAMES:
        assert env[name] not in result.output and env[name] not in as_json.output


@pytest.mark.parametrize(
    ("variable", "failing", "skipped", "named"),
    [
        (
            settings.ENV_INTACCT_SENDER_PASSWORD,
            "intacct: sender authorization",
            "intacct: user sign-in",
            "INTACCT_SENDER_PASSWORD",
        ),
        (
            settings.ENV_INTACCT_USER_PASSWORD,
            "intacct: user sign-in",
            "intacct: ticket custom object",
            "INTACCT_USER_PASSWORD",
        ),
    ],
)
def test_wrong_intacct_password_fails_its_row_with_one_sign_in(
    home: dict[str, str], variable: str, failing: str, skipped: str, named: str
) -> None:
    with sandboxes() as s:
        env = {**s.env, **home, variable: "not-the-password"}
        rows = rows_of(env)
        with s.intacct() as c:
            requests = c.get("/_sandbox/stats").json()["requests"]
    assert rows[failing].status == "fail" and named in rows[failing].fix
    assert rows[skipped].status == "skip"
    if variable == settings.ENV_INTACCT_USER_PASSWORD:
        assert rows["intacct: sender authorization"].status == "pass"
    assert requests == 1  # a single getAPISession: a lockout needs repeated attempts
    assert all("not-the-password" not in r.found + r.fix for r in rows.values())


def test_non_admin_zendesk_user_fails_role_and_write_rows(home: dict[str, str]) -> None:
    with sandboxes(zendesk=ZendeskSandboxConfig(user_role="agent")) as s:
        rows = rows_of({**s.env, **home})
    assert rows["zendesk: authentication"].status == "pass"
    assert rows["zendesk: user role"].status == "fail"
    assert "Role: Admin" in rows["zendesk: user role"].fix
    assert rows["zendesk: permission to write organizations"].status == "fail"


def test_wrong_zendesk_token_fails_authentication(home: dict[str, str]) -> None:
    with sandboxes() as s:
        rows = rows_of({**s.env, **home, settings.ENV_ZENDESK_API_TOKEN: "nope-nope"})
    assert rows["zendesk: authentication"].status == "fail"
    assert "ZENDESK_API_TOKEN" in rows["zendesk: authentication"].fix
    assert rows["zendesk: user role"].status == "skip"


def test_missing_custom_object(home: dict[str, str]) -> None:
    with sandboxes(intacct=IntacctSandboxConfig(ticket_object_exists=False)) as s:
        rows = rows_of({**s.env, **home})
    row = rows["intacct: ticket custom object"]
    assert row.status == "fail" and "Platform Services" in row.fix
    assert rows["intacct: ticket object relationship to VENDOR"].status == "skip"


def test_missing_relationship_field(home: dict[str, str]) -> None:
    with sandboxes(intacct=IntacctSandboxConfig(ticket_relationship_exists=False)) as s:
        rows = rows_of({**s.env, **home})
    assert rows["intacct: ticket custom object"].status == "pass"
    row = rows["intacct: ticket object relationship to VENDOR"]
    assert row.status == "fail" and "RVENDOR" in row.found and "many-to-one" in row.fix


def test_missing_organization_field(home: dict[str, str], tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING_WITH_FIELD)
    with sandboxes() as s:
        env = {**s.env, **home, settings.ENV_MAPPING_FILE: str(mapping)}
        row = rows_of(env)["zendesk: organization fields"]
        assert row.status == "fail" and "intacct_vendor_id" in row.found
        assert "Organization fields" in row.fix
        with s.zendesk() as c:
            c.post(
                "/api/v2/organization_fields.json",
                json={
                    "organization_field": {
                        "type": "text",
                        "key": "intacct_vendor_id",
                        "title": "Intacct vendor id",
                    }
                },
                auth=(f"{s.env['ZENDESK_EMAIL']}/token", s.env["ZENDESK_API_TOKEN"]),
            ).raise_for_status()
        assert rows_of(env)["zendesk: organization fields"].status == "pass"


def test_missing_standing_fields_name_the_setup_command(home: dict[str, str]) -> None:
    with sandboxes() as s:
        env = {**s.env, **home}
        row = rows_of(env)["zendesk: standing organization fields"]
        assert row.status == "fail" and "intacct_standing" in row.found
        assert "ml-connector setup zendesk" in row.fix
        assert CliRunner().invoke(main, ["setup", "zendesk"], env=env).exit_code == 0
        assert rows_of(env)["zendesk: standing organization fields"].status == "pass"


def test_unreachable_ledger(home: dict[str, str]) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with sandboxes() as s:
        result = CliRunner().invoke(
            main, ["check"], env={**s.env, **home, settings.ENV_STAGING_DATABASE_URL: url}
        )
    assert result.exit_code == 1
    line = next(li for li in result.output.splitlines() if li.startswith("FAIL  ledger"))
    assert "127.0.0.1" in line
    assert "STAGING_DATABASE_URL" in result.output


def test_unsupported_date_format(home: dict[str, str]) -> None:
    with sandboxes(intacct=IntacctSandboxConfig(user_dateformat="/MdY")) as s:
        rows = rows_of({**s.env, **home})
    row = rows["intacct: user formatting"]
    assert row.status == "fail" and "/MdY" in row.found and "My Preferences" in row.fix


def test_missing_variables_are_listed_in_one_row(home: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["check", "--json"], env={**home, "INTACCT_SENDER_ID": ""})
    assert result.exit_code == 1
    report = json.loads(result.output)
    [config] = [r for r in report["checks"] if r["check"] == "required variables"]
    assert config["status"] == "fail"
    for name in ("INTACCT_SENDER_ID", "INTACCT_USER_PASSWORD", "ZENDESK_SUBDOMAIN"):
        assert name in config["found"]


def test_receiverreceiver_webhook_row_against_a_webhook_list() -> None:
    """The webhook list on a real HTTP server, two cursor pages (Zendesk's list shape)."""
    pages = {
        None: {
            "webhooks": [{"id": "01A", "name": "other", "endpoint": "https://x.example/hook"}],
            "meta": {"has_more": True, "after_cursor": "c1"},
        },
        "c1": {
            "webhooks": [
                {
                    "id": "01B",
                    "name": "ml-connector",
                    "endpoint": "https://connector.example.com/webhooks/zendesk",
                    "status": "active",
                },
                {
                    "id": "01C",
                    "name": "old",
                    "endpoint": "https://old.example.com/webhooks/zendesk",
                    "status": "inactive",
                },
            ],
            "meta": {"has_more": False, "after_cursor": None},
        },
    }

    def script(handler: Handler, seen: Seen) -> None:
        after = seen.path.split("page%5Bafter%5D=")[-1] if "after" in seen.path else None
        handler.answer(200, json.dumps(pages[after]).encode(), {"Content-Type": "application/json"})

    with hostile_server(script) as server:
        client = ZendeskClient(base_url=server.url, email="a@example.com", api_token="t")
        with client:
            found = receiver_webhook_row(client, "https://connector.example.com/webhooks/zendesk/")
            missing = receiver_webhook_row(client, "https://elsewhere.example.com/webhooks/zendesk")
            inactive = receiver_webhook_row(client, "https://old.example.com/webhooks/zendesk")
    assert found.status == "pass" and "ml-connector" in found.found
    assert missing.status == "fail" and "none of 3 webhook(s)" in missing.found
    assert "Webhooks" in missing.fix
    assert inactive.status == "fail" and "inactive" in inactive.found


def test_a_foreign_intacct_endpoint_is_refused_before_any_request(home: dict[str, str]) -> None:
    with sandboxes() as s:
        rows = rows_of({**s.env, **home, settings.ENV_INTACCT_ALLOW_CUSTOM_ENDPOINT: "0"})
        with s.intacct() as c:
            assert c.get("/_sandbox/stats").json()["requests"] == 0
    row = rows["intacct: gateway endpoint"]
    assert row.status == "fail" and "INTACCT_ENDPOINT_URL" in row.fix


def test_plain_http_zendesk_base_url_needs_the_sandbox_flag(home: dict[str, str]) -> None:
    with sandboxes() as s:
        env = {**s.env, **home, settings.ENV_ZENDESK_ALLOW_CUSTOM_BASE_URL: "0"}
        rows = rows_of(env)
    row = rows["zendesk: configuration"]
    assert row.status == "fail" and "ZENDESK_BASE_URL must be https" in row.found


def test_receiver_webhook_in_the_sandbox(home: dict[str, str]) -> None:
    receiver = f"http://127.0.0.1:{free_port()}/webhooks/zendesk"
    with sandboxes(zendesk=ZendeskSandboxConfig(webhook_url=receiver)) as s:
        env = {**s.env, **home}
        # A correct setup includes the standing fields the default mapping names.
        assert CliRunner().invoke(main, ["setup", "zendesk"], env=env).exit_code == 0
        result = CliRunner().invoke(main, ["check", "--json", "--receiver-url", receiver], env=env)
        elsewhere = rows_of(env, receiver_url="https://connector.example.com/webhooks/zendesk")
    assert result.exit_code == 0, result.output
    [found] = [
        r for r in json.loads(result.output)["checks"] if r["check"] == "webhook to the receiver"
    ]
    assert found["status"] == "pass"
    row = elsewhere["zendesk: webhook to the receiver"]
    assert row.status == "fail" and "Admin Center > Apps and integrations > Webhooks" in row.fix


def test_the_intacct_deliveries_row_says_whether_deliveries_arrive(home: dict[str, str]) -> None:
    from datetime import timedelta

    from connector_pipeline.check.deliveries import check_deliveries
    from connector_pipeline.staging.hints import IntacctHints
    from connector_pipeline.staging.store import utcnow

    url = home[settings.ENV_STAGING_DATABASE_URL]
    [silent] = check_deliveries({}, url)
    assert silent.status == "skip" and "polling" in silent.found
    configured = {
        settings.ENV_INTACCT_WEBHOOK_CLIENT_ID: "app.sage.com",
        settings.ENV_INTACCT_WEBHOOK_KEY: "a-client-secret-of-at-least-32-bytes",
    }
    [none_yet] = check_deliveries(configured, url)
    assert none_yet.status == "warn" and "no delivery" in none_yet.found
    assert "Triggers" in none_yet.fix
    store = StagingStore.open(url)
    try:
        IntacctHints(store).append("k1", utcnow() - timedelta(hours=30))
        [stale] = check_deliveries(configured, url)
        assert stale.status == "warn" and "30 h 0 min ago" in stale.found
        IntacctHints(store).append("k2", utcnow() - timedelta(minutes=5))
        [fresh] = check_deliveries(configured, url)
        assert fresh.status == "pass" and "5 min ago" in fresh.found
    finally:
        store.dispose()
