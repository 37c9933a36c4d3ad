"""Refused credentials pause automatic runs (DESIGN.md decision 12).

Intacct locks a user out after repeated failed sign-ins, so after a step fails with a
refused credential (`defs/common.py` marks the Failure), the failure sensor records it in
the ledger, and schedules and sensors skip (a SkipReason in the UI) until the credential
variables change or a run succeeds (a run launched by hand is never gated). While it
persists, one automatic run per hour may still try, in case the password was fixed on the
service's side. The `*_credentials` asset checks show the state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timedelta

import dagster as dg

from connector_pipeline.credentials import INTACCT, ZENDESK, fingerprint
from connector_pipeline.defs.common import CREDENTIAL_FAILURE_KEY
from connector_pipeline.defs.resources import StagingResource
from connector_pipeline.defs.vendors import intacct_vendors, zendesk_organizations
from connector_pipeline.staging.credential_blocks import CredentialBlocks

RETRY_EVERY = timedelta(hours=1)
CHECK_NAME = "{system}_credentials_accepted"
CHECKED_ASSET = {INTACCT: intacct_vendors.key, ZENDESK: zendesk_organizations.key}


def pause_reason(
    blocks: CredentialBlocks,
    environ: Mapping[str, str] = os.environ,
    now: datetime | None = None,
) -> str | None:
    """Why automatic runs must not start now, or None when they may. Changed credentials
    lift a pause; otherwise one caller per hour is let through to try again."""
    reasons = []
    for system, failure in sorted(blocks.all().items()):
        if fingerprint(system, environ) != failure.fingerprint:
            blocks.clear(system)
            continue
        if blocks.claim_attempt(system, RETRY_EVERY, at=now):
            continue
        reasons.append(
            f"{system} credentials refused at {failure.failed_at:%Y-%m-%d %H:%M} UTC: "
            f"{failure.message}. Automatic runs are paused until the credentials change or "
            "a run launched by hand succeeds (one attempt per hour meanwhile)."
        )
    return " ".join(reasons) or None


def paused_by_credentials(staging: StagingResource) -> dg.SkipReason | None:
    """For schedules and sensors: a SkipReason while refused credentials pause them."""
    reason = pause_reason(CredentialBlocks(staging.store))
    return dg.SkipReason(reason) if reason else None


def _check_evaluation(system: str, message: str | None) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=CHECKED_ASSET[system],
        check_name=CHECK_NAME.format(system=system),
        passed=message is None,
        metadata={"refused": message or "no"},
    )


@dg.run_failure_sensor(
    name="credential_failure_sensor", default_status=dg.DefaultSensorStatus.RUNNING
)
def credential_failure_sensor(
    context: dg.RunFailureSensorContext, staging: StagingResource
) -> None:
    """Records a refused credential so automatic runs pause, and fails its asset check."""
    blocks = CredentialBlocks(staging.store)
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        failure = data.user_failure_data if data is not None else None
        marker = failure.metadata.get(CREDENTIAL_FAILURE_KEY) if failure else None
        if failure is None or marker is None:
            continue
        system = str(marker.value)
        message = failure.description or f"{system} refused the credentials"
        blocks.record(system, fingerprint(system, os.environ), message)
        context.instance.report_runless_asset_event(_check_evaluation(system, message))
        context.log.warning("automatic runs paused: %s", message)


@dg.run_status_sensor(
    name="credential_recovery_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def credential_recovery_sensor(
    context: dg.RunStatusSensorContext, staging: StagingResource
) -> None:
    """A run that succeeded signed in: lift every pause and pass the checks again."""
    blocks = CredentialBlocks(staging.store)
    for system in sorted(blocks.all()):
        blocks.clear(system)
        context.instance.report_runless_asset_event(_check_evaluation(system, None))


def _credentials_check(system: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=CHECKED_ASSET[system],
        name=CHECK_NAME.format(system=system),
        description=f"{system.capitalize()} accepts the configured credentials "
        "(no pause of automatic runs in force).",
    )
    def _check(staging: StagingResource) -> dg.AssetCheckResult:
        failure = CredentialBlocks(staging.store).all().get(system)
        return dg.AssetCheckResult(
            passed=failure is None,
            metadata={"refused": failure.message if failure else "no"},
        )

    return _check


CREDENTIAL_CHECKS = [_credentials_check(INTACCT), _credentials_check(ZENDESK)]
CREDENTIAL_SENSORS = [credential_failure_sensor, credential_recovery_sensor]
