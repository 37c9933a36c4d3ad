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

from connector_pipeline.setup_cli import setup_group  # noqa: E402

main.add_command(setup_group)

if __name__ == "__main__":
    main()
