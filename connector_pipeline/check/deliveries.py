"""`ml-connector check`, Intacct deliveries row: once Intacct's outbound webhooks are
configured, have deliveries arrived recently? (docs/intacct-webhooks.md)

Reads only. Silence is a warning, not a failure: polling still covers every change, only
later than a delivery would."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from connector_pipeline import settings
from connector_pipeline.check.rows import CheckRow, passed, skipped, warned
from connector_pipeline.intacct.webhooks import TriggerConfig
from connector_pipeline.staging.hints import IntacctHints
from connector_pipeline.staging.store import StagingStore, create_staging_engine, utcnow

SYSTEM = "intacct webhooks"
CHECK = "deliveries arriving"
RECENT = timedelta(hours=settings.INTACCT_WEBHOOK_RECENT_HOURS)
FIX = (
    "check the trigger in Intacct (Platform Services > Objects > Vendor > Triggers, "
    f"'Use webhook delivery', URL ending in {settings.INTACCT_WEBHOOK_PATH}) and the "
    "receiver's /healthz (intacct_deliveries.rejected_by_reason)"
)


def check_deliveries(
    environ: Mapping[str, str], ledger_url: str, *, now: Callable[[], datetime] = utcnow
) -> list[CheckRow]:
    try:
        configured = TriggerConfig.from_env(environ)
    except ValueError as exc:
        return [warned(SYSTEM, CHECK, str(exc), f"fix {settings.ENV_INTACCT_WEBHOOK_ALGORITHMS}")]
    if configured is None:
        return [
            skipped(
                SYSTEM,
                CHECK,
                f"not configured ({settings.ENV_INTACCT_WEBHOOK_CLIENT_ID} and "
                f"{settings.ENV_INTACCT_WEBHOOK_KEY} unset): vendor changes arrive by polling",
            )
        ]
    try:
        parsed = make_url(ledger_url)
    except ArgumentError:
        return [skipped(SYSTEM, CHECK, "the ledger URL is not usable (see the ledger row)")]
    if parsed.get_backend_name() == "sqlite" and not Path(str(parsed.database)).exists():
        # Reading would create the file; the ledger row reports it missing.
        return [skipped(SYSTEM, CHECK, "the ledger does not exist yet")]
    store = StagingStore(create_staging_engine(ledger_url))
    try:
        last = IntacctHints(store).last_received()
    except SQLAlchemyError:
        return [skipped(SYSTEM, CHECK, "the ledger cannot be read (see the ledger row)")]
    finally:
        store.dispose()
    if last is None:
        return [warned(SYSTEM, CHECK, "configured, but no delivery has arrived yet", FIX)]
    age = now() - last
    found = f"last delivery {last.isoformat(timespec='seconds')} ({_ago(age)} ago)"
    if age > RECENT:
        return [warned(SYSTEM, CHECK, found, FIX)]
    return [passed(SYSTEM, CHECK, found)]


def _ago(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
