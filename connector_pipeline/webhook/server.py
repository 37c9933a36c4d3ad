"""Run the receiver under uvicorn with settings that resist slow or greedy clients."""

from __future__ import annotations

import logging
import os
from typing import Any

import uvicorn

from connector_pipeline import settings
from connector_pipeline.staging import StagingStore

APP_FACTORY = "connector_pipeline.webhook.app:create_app_from_env"

log = logging.getLogger(__name__)


def log_config(level: str = "info") -> dict[str, Any]:
    """JSON lines on stderr for the receiver and uvicorn, in every worker process."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "connector_pipeline.webhook.access_log.JsonLogFormatter"}},
        "handlers": {"stderr": handler},
        "loggers": {
            name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
            for name in ("connector_pipeline", "uvicorn", "uvicorn.error")
        },
    }


def uvicorn_options(*, http: str = "httptools", log_level: str = "info") -> dict[str, Any]:
    """Server settings: idle keep-alive connections are closed quickly, connections and
    in-flight requests are capped per worker (excess gets 503, which Zendesk retries), header
    size is bounded, and uvicorn's own access log is replaced by the structured one."""
    return {
        "http": http,
        "timeout_keep_alive": settings.WEBHOOK_TIMEOUT_KEEP_ALIVE_S,
        "limit_concurrency": settings.WEBHOOK_LIMIT_CONCURRENCY,
        "backlog": settings.WEBHOOK_BACKLOG,
        "h11_max_incomplete_event_size": settings.WEBHOOK_MAX_HEADER_BYTES,
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
    http: str = "httptools",
    log_level: str = "info",
) -> None:
    """Migrate the ledger once, then run `workers` receiver processes on host:port."""
    if ledger_url:
        # Workers build their app from the environment, in fresh processes.
        os.environ[settings.ENV_STAGING_DATABASE_URL] = ledger_url
    store = StagingStore.open(ledger_url)
    store.dispose()
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        **uvicorn_options(http=http, log_level=log_level),
    )
