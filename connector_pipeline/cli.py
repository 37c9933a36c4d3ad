"""The `ml-connector` command."""

from __future__ import annotations

import logging

import click

from connector_pipeline import settings


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

    # The clients log every call at INFO; the rows already say what happened.
    logging.getLogger().setLevel(logging.WARNING)
    rows = run_checks(receiver_url=receiver_url)
    click.echo(render_json(rows) if as_json else as_table(rows))
    if failed_any(rows):
        raise SystemExit(1)


@main.group()
def db() -> None:
    """The staging ledger."""


@db.command("upgrade")
@click.option(
    "--url",
    envvar=settings.ENV_STAGING_DATABASE_URL,
    default=None,
    help="Ledger URL (default: STAGING_DATABASE_URL or SQLite under ML_CONNECTOR_HOME).",
)
def db_upgrade(url: str | None) -> None:
    """Apply pending ledger migrations."""
    from connector_pipeline.staging import StagingStore

    store = StagingStore.open(url, migrate=False)
    try:
        ran = store.upgrade()
        click.echo(
            f"ledger at revision {store.current_revision()}" + ("" if ran else " (already current)")
        )
    finally:
        store.dispose()


@db.command("quarantine")
@click.option("--kind", default=None, help="Only this kind (e.g. organization, ticket_record).")
@click.option("--url", envvar=settings.ENV_STAGING_DATABASE_URL, default=None)
def db_quarantine(kind: str | None, url: str | None) -> None:
    """List what is in quarantine and why."""
    from connector_pipeline.staging import StagingStore

    store = StagingStore.open(url)
    try:
        items = store.quarantine_list(kind)
        for item in items:
            click.echo(f"{item.kind}\t{item.key}\tattempts={item.attempts}\t{item.reason}")
        click.echo(f"{len(items)} open")
    finally:
        store.dispose()


from connector_pipeline.webhook.cli import webhook_group  # noqa: E402

main.add_command(webhook_group)

from connector_pipeline.demo import demo_command  # noqa: E402
from connector_pipeline.sandbox.cli import sandbox_command  # noqa: E402

main.add_command(sandbox_command)
main.add_command(demo_command)

from connector_pipeline.zendesk.oauth_cli import zendesk_group  # noqa: E402

main.add_command(zendesk_group)

if __name__ == "__main__":
    main()
