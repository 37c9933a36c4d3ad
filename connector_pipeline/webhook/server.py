"""Run the receiver under uvicorn with settings that resist slow or greedy clients."""

from __future__ import annotations

import logging
import os
from typing import Any

import uvicorn

from connector_pipeline import settings
from connector_pipeline.staging import StagingStore
from connector_pipeline.webhook.access_log import configure_json_logging, log_config
from connector_pipeline.webhook.protocol import GuardedHttpToolsProtocol

APP_FACTORY = "connector_pipeline.webhook.app:create_app_from_env"

log = logging.getLogger(__name__)


def uvicorn_options(*, log_level: str = "info") -> dict[str, Any]:
    """Server settings: request line and headers must arrive within a deadline and a size
    (`GuardedHttpToolsProtocol`), idle keep-alive connections are closed quickly,
    connections and in-flight requests are capped per worker (excess gets 503, which
    Zendesk retries), and uvicorn's own access log is replaced by the structured one."""
    return {
        "http": GuardedHttpToolsProtocol,
        "timeout_keep_alive": settings.WEBHOOK_TIMEOUT_KEEP_ALIVE_S,
        "limit_concurrency": settings.WEBHOOK_LIMIT_CONCURRENCY,
        "backlog": settings.WEBHOOK_BACKLOG,
        "timeout_graceful_shutdown": settings.WEBHOOK_GRACEFUL_SHUTDOWN_S,
        "server_header": False,
        "access_log": False,
        "log_config": log_config(log_level),
        "log_level": log_level,
    }


def serve(
    *,
    host: str = settings.WEBHOOK_DEFAULT_HOST,
    port: int = settings.WEBHOOK_DEFAULT_PORT,
    workers: int = 1,
    ledger_url: str | None = None,
    log_level: str = "info",
) -> None:
    """Migrate the ledger once, then run `workers` receiver processes on host:port."""
    configure_json_logging(log_level)
    if ledger_url:
        # Workers build their app from the environment, in fresh processes.
        os.environ[settings.ENV_STAGING_DATABASE_URL] = ledger_url
    store = StagingStore.open(ledger_url)
    store.dispose()
    if workers > 1 and store.dialect == "sqlite":
        log.warning(
            "%d workers share one SQLite write lock: expect a slower tail than with one "
            "worker; use Postgres to scale out (docs/webhooks.md, Capacity)",
            workers,
        )
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        **uvicorn_options(log_level=log_level),
    )
