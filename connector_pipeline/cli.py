"""The `ml-connector` command."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from connector_pipeline import settings

if TYPE_CHECKING:
    from connector_pipeline.staging import StagingStore
    from connector_pipeline.status import AssetRun


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def main(verbose: bool) -> None:
    """ml-connector: keeps Sage Intacct and Zendesk in step."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@main.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option(
    "--receiver-url",
    default=None,
    help="Public URL of the webhook receiver (…/webhooks/zendesk): check a Zendesk webhook "
    "points at it.",
)
def check(as_json: bool, receiver_url: str | None) -> None:
    """Check the configuration against the real systems, reading only: one row per check
    (pass / fail / warn / skip) with the fix for each failure. Exit status 1 on any
    failure. Secrets are never printed."""
    from connector_pipeline.check import run_checks
    from connector_pipeline.check.report import as_json as render_json
    from connector_pipeline.check.report import as_table, failed_any

    parent = click.get_current_context().parent
    if not (parent and parent.params.get("verbose")):
        # The clients log every call at INFO; the rows already say what happened.
        logging.getLogger().setLevel(logging.WARNING)
    rows = run_checks(receiver_url=receiver_url)
    click.echo(render_json(rows) if as_json else as_table(rows))
    if failed_any(rows):
        raise SystemExit(1)


@main.group()
def db() -> None:
    """The staging ledger."""


URL_HELP = (
    "Ledger URL. Default: STAGING_DATABASE_URL, else the ledger `ml-connector demo` wrote to "
    "ML_CONNECTOR_HOME/staging-url, else ML_CONNECTOR_HOME/staging.db (the resolution the "
    "Dagster resources use)."
)
ASSETS = (
    "intacct_vendors",
    "zendesk_organizations",
    "zendesk_tickets",
    "zendesk_ticket_events",
    "intacct_ticket_records",
)


def _resolve_ledger(url: str | None) -> tuple[str, str]:
    return (url, "--url") if url else settings.staging_database_source()


def _open_existing_ledger(url: str | None) -> tuple[StagingStore, str, str]:
    """The ledger to read, which must exist: reading never creates an empty one."""
    from sqlalchemy.engine import make_url

    from connector_pipeline.staging import StagingStore

    resolved, source = _resolve_ledger(url)
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database)
        if not path.is_file():
            raise click.ClickException(
                f"no ledger at {path} (from {source}). Start `ml-connector demo` or a run "
                "first, or pass --url / set STAGING_DATABASE_URL."
            )
    store = StagingStore.open(resolved, migrate=False)
    return store, resolved, source


@db.command("upgrade")
@click.option("--url", default=None, help=URL_HELP)
def db_upgrade(url: str | None) -> None:
    """Apply pending ledger migrations."""
    from connector_pipeline.staging import StagingStore

    store = StagingStore.open(_resolve_ledger(url)[0], migrate=False)
    try:
        ran = store.upgrade()
        click.echo(
            f"ledger at revision {store.current_revision()}" + ("" if ran else " (already current)")
        )
    finally:
        store.dispose()


@db.command("quarantine")
@click.option(
    "--kind",
    default=None,
    help="Only this kind: intacct_record, organization, external_id_collision, "
    "zendesk_ticket, webhook_event, ticket_record or ticket_unmatched.",
)
@click.option("--url", default=None, help=URL_HELP)
def db_quarantine(kind: str | None, url: str | None) -> None:
    """List what is in quarantine and why: a summary by reason (the counts the
    `quarantine_size` asset checks report), then every open entry."""
    from connector_pipeline.status import quarantine_groups, safe_url

    store, resolved, source = _open_existing_ledger(url)
    try:
        items = store.quarantine_list(kind)
    finally:
        store.dispose()
    click.echo(f"ledger {safe_url(resolved)} (from {source})")
    for group in quarantine_groups(items):
        click.echo(f"{group.count:>6}  {group.kind}\t{group.reason}")
    for item in items:
        click.echo(f"{item.kind}\t{item.key}\tattempts={item.attempts}\t{item.reason}")
    click.echo(f"{len(items)} open")


def _dagster_home() -> Path | None:
    home = os.environ.get("DAGSTER_HOME")
    path = Path(home) if home else settings.ml_connector_home() / "dagster"
    return path if (path / "dagster.yaml").is_file() else None


def _last_materializations(dagster_home: Path) -> list[AssetRun]:
    import dagster as dg

    from connector_pipeline.status import AssetRun

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        latest = instance.get_latest_materialization_events([dg.AssetKey(a) for a in ASSETS])
    out = []
    for name in ASSETS:
        entry = latest.get(dg.AssetKey(name))
        out.append(
            AssetRun(
                asset=name,
                run_id=entry.run_id if entry else None,
                at=datetime.fromtimestamp(entry.timestamp, UTC) if entry else None,
            )
        )
    return out


@main.command("status")
@click.option("--url", default=None, help=URL_HELP)
@click.option(
    "--dagster-home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dagster instance to read the last runs from. Default: DAGSTER_HOME, else "
    "ML_CONNECTOR_HOME/dagster (where the demo keeps it).",
)
def status_command(url: str | None, dagster_home: Path | None) -> None:
    """What the deployment's ledger holds: rows per table, cursors and their age, the
    quarantine by reason, the last errors, and each asset's last successful run."""
    from connector_pipeline.status import ledger_status, render_status

    store, resolved, source = _open_existing_ledger(url)
    try:
        status = ledger_status(store, resolved, source)
    finally:
        store.dispose()
    home = dagster_home or _dagster_home()
    runs: list[AssetRun] | str | None = None
    if home is not None:
        try:
            runs = _last_materializations(home)
        except Exception as exc:  # e.g. Postgres storage whose variables are not set here
            runs = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    click.echo(render_status(status, runs))


from connector_pipeline.webhook.cli import webhook_group  # noqa: E402

main.add_command(webhook_group)

from connector_pipeline.demo import demo_command  # noqa: E402
from connector_pipeline.sandbox.cli import sandbox_command  # noqa: E402

main.add_command(sandbox_command)
main.add_command(demo_command)

from connector_pipeline.zendesk.oauth_cli import zendesk_group  # noqa: E402

main.add_command(zendesk_group)

from connector_pipeline.setup_cli import setup_group  # noqa: E402

main.add_command(setup_group)

if __name__ == "__main__":
    main()
