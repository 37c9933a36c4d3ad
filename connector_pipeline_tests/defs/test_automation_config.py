"""The schedules, the inbox sensor and the checks take their settings from the environment
the code location loads with, not from whatever the process had when `defs/` was imported."""

from __future__ import annotations

import dagster as dg
import pytest

from connector_pipeline import settings
from connector_pipeline.defs.automation import inbox_sensor_for, schedules_for


def test_schedules_follow_the_environment_they_are_built_for() -> None:
    environ = {
        settings.ENV_VENDOR_SYNC_CRON: "*/5 * * * *",
        settings.ENV_RECONCILE_CRON: "0 3 * * *",
        settings.ENV_SCHEDULES_RUNNING: "1",
    }
    built = {s.name: s for s in schedules_for(environ)}
    assert built["vendor_sync_every_15_minutes"].cron_schedule == "*/5 * * * *"
    assert built["nightly_full_reconciliation"].cron_schedule == "0 3 * * *"
    assert built["ticket_poll_every_15_minutes"].cron_schedule == (
        settings.DEFAULT_TICKET_POLL_CRON
    )
    assert {s.default_status for s in built.values()} == {dg.DefaultScheduleStatus.RUNNING}
    defaults = schedules_for({})
    assert {s.default_status for s in defaults} == {dg.DefaultScheduleStatus.STOPPED}


def test_the_inbox_sensor_interval_is_validated_and_bound() -> None:
    sensor = inbox_sensor_for({settings.ENV_INBOX_SENSOR_INTERVAL_S: "30"})
    assert sensor.minimum_interval_seconds == 30
    with pytest.raises(ValueError, match="whole number"):
        inbox_sensor_for({settings.ENV_INBOX_SENSOR_INTERVAL_S: "soon"})
