"""Structured access logs: one JSON line per request, never a body, signature or secret.

`AccessLogMiddleware` times each request and logs what the handler chose to disclose in
`scope["state"][LOG_FIELDS]` (outcome, reason, ids), next to method, path and status.
"""

from __future__ import annotations

import json
import logging
import logging.config
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

ACCESS_LOGGER = "connector_pipeline.webhook.access"
LOG_FIELDS = "access_log_fields"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(ACCESS_LOGGER)


def log_fields(scope: Scope) -> dict[str, Any]:
    """The dict a handler fills with what the access log line may show."""
    state = scope.setdefault("state", {})
    fields: dict[str, Any] = state.setdefault(LOG_FIELDS, {})
    return fields


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        fields = log_fields(scope)

        async def send_and_capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_capture)
        finally:
            if log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                record = {
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client": client[0] if client else None,
                    **fields,
                }
                log.info("http request", extra={"fields": record})


class JsonLogFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", ...fields}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception text from the database layer can quote parameters.
            payload["exception"] = record.exc_info[0].__name__
        return json.dumps(payload, default=str)


JsonLogFormatter.converter = time.gmtime


def log_config(level: str = "info") -> dict[str, Any]:
    """JSON lines on stderr for the receiver and uvicorn, in every worker process."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "connector_pipeline.webhook.access_log.JsonLogFormatter"}},
        "handlers": {"stderr": handler},
        "loggers": {
            **{
                name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
                for name in ("connector_pipeline", "uvicorn", "uvicorn.error")
            },
            # Alembic announces its plugins at INFO on every start; not worth a line each.
            "alembic": {"level": "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }


def configure_json_logging(level: str = "info") -> None:
    """JSON lines on stderr for this process (workers get the same via uvicorn)."""
    logging.config.dictConfig(log_config(level))
