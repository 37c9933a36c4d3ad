"""Bad credentials fail fast and never lock an account (issue 11, section 2): a refused
credential costs one sign-in, fails the run at once with one line naming the variable,
is not retried by the step's RetryPolicy, and pauses schedules and sensors until the
credentials change or a run succeeds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import dagster as dg
import pytest

from connector_pipeline import settings
from connector_pipeline.credentials import (
    INTACCT,
    credential_failure,
    fingerprint,
    missing_configuration,
)
from connector_pipeline.defs.automation import (
    ticket_poll_schedule,
    vendor_sync_job,
    vendor_sync_schedule,
    webhook_inbox_sensor,
)
from connector_pipeline.defs.credentials import (
    credential_failure_sensor,
    credential_recovery_sensor,
    pause_reason,
)
from connector_pipeline.defs.resources import StagingResource, resources_for
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.intacct import IntacctAuthError, IntacctPermissionError
from connector_pipeline.intacct.errors import IntacctSenderAuthError, IntacctSessionInvalid
from connector_pipeline.sandbox.scenario import seed_vendors
from connector_pipeline.staging import StagingStore, utcnow
from connector_pipeline.staging.credential_blocks import CredentialBlocks
from connector_pipeline.zendesk import ZendeskAuthError, ZendeskError
from connector_pipeline_tests.e2e.harness import RATE_WINDOW_S, Pipeline, pipeline


@pytest.fixture
def p(sqlite_url: str) -> Iterator[Pipeline]:
    with pipeline(sqlite_url) as running:
        yield running


def run(
    p: Pipeline, env: dict[str, str], assets: list[Any] | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets or [intacct_vendors],
        resources=resources_for(env, rate_window_s=RATE_WINDOW_S),
        instance=p.instance,
        raise_on_error=False,
    )


def failure_of(result: dg.ExecuteInProcessResult) -> dg.DagsterEvent:
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert len(failures) == 1
    return failures[0]


def description(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data
    assert data is not None and data.user_failure_data is not None
    return str(data.user_failure_data.description)


def retries(result: dg.ExecuteInProcessResult) -> int:
    return sum(e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)


@pytest.mark.parametrize(
    ("variable", "named"),
    [
        (settings.ENV_INTACCT_USER_PASSWORD, "INTACCT_USER_PASSWORD"),
        (settings.ENV_INTACCT_SENDER_PASSWORD, "INTACCT_SENDER_PASSWORD"),
    ],
)
def test_wrong_intacct_password_costs_one_sign_in_and_one_line(
    p: Pipeline, variable: str, named: str
) -> None:
    before = p.intacct_stats()
    result = run(p, {**p.env, variable: "wrong-password"})
    assert not result.success
    line = description(failure_of(result))
    assert named in line and "\n" not in line
    assert "wrong-password" not in line
    assert retries(result) == 0  # the RetryPolicy did not retry it
    calls = p.intacct_stats()["requests"] - before["requests"]
    assert calls == 1  # one getAPISession, nothing more


def test_wrong_zendesk_token_fails_without_retry(p: Pipeline) -> None:
    seed_vendors(p.sandboxes, vendors=3)
    p.materialize([intacct_vendors])
    env = {**p.env, settings.ENV_ZENDESK_API_TOKEN: "wrong-token"}
    result = run(p, env, [intacct_vendors, zendesk_organizations])
    assert not result.success
    line = description(failure_of(result))
    assert "ZENDESK_API_TOKEN" in line and "wrong-token" not in line
    assert retries(result) == 0


def test_missing_configuration_is_one_line_listing_every_variable(p: Pipeline) -> None:
    env = {settings.ENV_STAGING_DATABASE_URL: p.ledger_url}
    result = run(p, env)
    assert not result.success
    [init_failure] = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE
    ]
    error = getattr(init_failure.event_specific_data, "error", None)
    assert error is not None
    text = error.message.strip()
    assert text.count("\n") == 0 and text.startswith("dagster._core.definitions.events.Failure")
    for name in (
        "INTACCT_SENDER_ID",
        "INTACCT_SENDER_PASSWORD",
        "INTACCT_COMPANY_ID",
        "INTACCT_USER_ID",
        "INTACCT_USER_PASSWORD",
    ):
        assert name in text
    assert p.intacct_stats()["requests"] == 0  # before any request


def test_missing_configuration_lists_alternatives() -> None:
    assert missing_configuration({"ZENDESK_SUBDOMAIN": "", "ZENDESK_EMAIL": "a@b.c"}) == [
        "ZENDESK_SUBDOMAIN",
        "ZENDESK_API_TOKEN",
    ]
    assert missing_configuration({"ZENDESK_OAUTH_TOKEN": "t", "ZENDESK_BASE_URL": "x"}) == []
    assert missing_configuration({"INTACCT_USER_ID": ""}) == ["INTACCT_USER_ID"]


def test_refused_credentials_pause_automatic_runs_until_they_change(
    p: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = {**p.env, settings.ENV_INTACCT_USER_PASSWORD: "wrong-password"}
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    staging = StagingResource(database_url=p.ledger_url)
    result = run(p, bad)
    assert not result.success

    # The failure sensor records the refusal (and fails the asset check).
    failure = failure_of(result)
    run_record = p.instance.get_run_by_id(result.run_id)
    assert run_record is not None
    with dg.build_run_status_sensor_context(
        sensor_name="credential_failure_sensor",
        dagster_instance=p.instance,
        dagster_run=run_record,
        dagster_event=next(
            e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE
        ),
        resources={"staging": staging},
    ) as context:
        credential_failure_sensor(context.for_run_failure())
    blocks = CredentialBlocks(p.store)
    recorded = blocks.all()[INTACCT]
    check_key = dg.AssetCheckKey(intacct_vendors.key, "intacct_credentials_accepted")
    latest = p.instance.event_log_storage.get_latest_asset_check_execution_by_key([check_key])
    assert latest[check_key].status.value == "FAILED"  # shows in the UI at once
    assert recorded.message == description(failure)
    assert "wrong-password" not in recorded.fingerprint
    assert recorded.fingerprint == fingerprint(INTACCT, bad)

    # Schedules and sensors skip, saying why.
    with dg.build_schedule_context(resources={"staging": staging}) as schedule_context:
        skipped = vendor_sync_schedule(schedule_context)
        assert isinstance(skipped, dg.SkipReason)
        assert "INTACCT_USER_PASSWORD" in str(skipped.skip_message)
        assert isinstance(ticket_poll_schedule(schedule_context), dg.SkipReason)
    with dg.build_sensor_context(resources={"staging": staging}) as sensor_context:
        assert isinstance(webhook_inbox_sensor(sensor_context), dg.SkipReason)
    calls = p.intacct_stats()["requests"]

    # An hour later exactly one automatic run may try again.
    later = utcnow() + timedelta(hours=1, seconds=1)
    assert pause_reason(blocks, bad, now=later) is None
    assert pause_reason(blocks, bad, now=later) is not None

    # Changed credentials lift the pause at once.
    assert pause_reason(blocks, p.env) is None
    assert INTACCT not in blocks.all()
    assert p.intacct_stats()["requests"] == calls  # gating made no request


def test_a_successful_run_lifts_the_pause(p: Pipeline) -> None:
    blocks = CredentialBlocks(p.store)
    blocks.record(INTACCT, "f" * 64, "Intacct refused the sign-in: check INTACCT_USER_PASSWORD")
    result = p.materialize([intacct_vendors])
    run_record = p.instance.get_run_by_id(result.run_id)
    assert run_record is not None
    with dg.build_run_status_sensor_context(
        sensor_name="credential_recovery_sensor",
        dagster_instance=p.instance,
        dagster_run=run_record,
        dagster_event=next(
            e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS
        ),
        resources={"staging": StagingResource(database_url=p.ledger_url)},
    ) as context:
        credential_recovery_sensor(context)
    assert blocks.all() == {}
    assert vendor_sync_job.name == "vendor_sync"


def test_credential_blocks_on_the_ledger(store: StagingStore) -> None:
    blocks = CredentialBlocks(store)
    now = utcnow()
    blocks.record(INTACCT, "abc", "line", at=now)
    assert not blocks.claim_attempt(INTACCT, timedelta(hours=1), at=now + timedelta(minutes=59))
    assert blocks.claim_attempt(INTACCT, timedelta(hours=1), at=now + timedelta(hours=1))
    assert not blocks.claim_attempt(INTACCT, timedelta(hours=1), at=now + timedelta(hours=1))
    blocks.record(INTACCT, "def", "other", at=now)
    assert blocks.all()[INTACCT].fingerprint == "def"
    assert blocks.clear() == 1 and blocks.all() == {}


def test_which_refusals_pause_automatic_runs() -> None:
    bad_login = credential_failure(IntacctAuthError("x"))
    bad_sender = credential_failure(IntacctSenderAuthError("x"))
    no_permission = credential_failure(IntacctPermissionError("x"))
    unauthorized = credential_failure(ZendeskAuthError("x", status=401))
    forbidden = credential_failure(ZendeskAuthError("x", status=403))
    assert bad_login and bad_login.pauses_runs and "INTACCT_USER_PASSWORD" in bad_login.fix
    assert bad_sender and bad_sender.pauses_runs and "INTACCT_SENDER_ID" in bad_sender.fix
    assert unauthorized and unauthorized.pauses_runs and "ZENDESK_API_TOKEN" in unauthorized.fix
    # A missing permission fails as fast, but locks nothing: runs carry on.
    assert no_permission and not no_permission.pauses_runs
    assert forbidden and not forbidden.pauses_runs and "admin" in forbidden.fix
    assert credential_failure(IntacctSessionInvalid("x")) is None
    assert credential_failure(ZendeskError("x", status=500)) is None
