"""`ml-connector webhook ...` commands."""

from __future__ import annotations

import click

from connector_pipeline import settings


@click.group("webhook")
def webhook_group() -> None:
    """The Zendesk webhook receiver."""


@webhook_group.command("serve")
@click.option(
    "--host", default=settings.WEBHOOK_DEFAULT_HOST, show_default=True, help="Address to bind."
)
@click.option(
    "--port", default=settings.WEBHOOK_DEFAULT_PORT, show_default=True, type=int, help="Port."
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1), help="Processes.")
@click.option(
    "--url",
    "ledger_url",
    envvar=settings.ENV_STAGING_DATABASE_URL,
    default=None,
    help="Ledger URL (default: STAGING_DATABASE_URL or SQLite under ML_CONNECTOR_HOME).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    help="uvicorn log level (debug, info, warning, error).",
)
def serve_command(
    host: str, port: int, workers: int, ledger_url: str | None, log_level: str
) -> None:
    """Receive Zendesk webhooks on POST /webhooks/zendesk and commit them to the inbox.

    Signing secrets come from ZENDESK_WEBHOOK_SECRETS (comma-separated, current first),
    never from the command line, so they do not show in process listings.
    """
    from connector_pipeline.webhook.access_log import configure_json_logging

    # Before the ledger modules are imported: alembic logs while loading.
    configure_json_logging(log_level)
    from connector_pipeline.webhook.app import secrets_from_env
    from connector_pipeline.webhook.server import serve

    if not secrets_from_env():
        raise click.UsageError(
            f"{settings.ENV_ZENDESK_WEBHOOK_SECRETS} is not set: every delivery would be "
            "refused. Set it to the webhook's signing secret (see docs/webhooks.md)."
        )
    serve(
        host=host,
        port=port,
        workers=workers,
        ledger_url=ledger_url,
        log_level=log_level,
    )
