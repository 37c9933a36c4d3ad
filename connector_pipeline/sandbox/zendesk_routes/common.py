"""Helpers the sandbox Zendesk's routers share: request bodies, id lists, paging."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from connector_pipeline.sandbox.zendesk_errors import SandboxInvalid, not_found
from connector_pipeline.sandbox.zendesk_state import decode_cursor, encode_cursor


def csv_values(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v != ""]


def int_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise not_found() from exc


async def read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SandboxInvalid(
            400, {"error": "InvalidJSON", "description": "Request body is not valid JSON"}
        ) from exc
    if not isinstance(data, dict):
        raise SandboxInvalid(400, {"error": "InvalidJSON", "description": "Expected an object"})
    return data


def cursor_page(
    items: list[dict[str, Any]], request: Request, key: str, path: str
) -> dict[str, Any]:
    """Cursor pagination by id (`page[size]`, `page[after]`, `page[before]`), or offset
    pagination when no `page[size]` is given (the legacy default)."""
    params = request.query_params
    base = f"{request.base_url}api/v2/{path}.json"
    if "page[size]" not in params:
        return offset_page(items, request, key, path)
    size = min(max(int(params["page[size]"]), 1), 100)
    ids = [item["id"] for item in items]
    if "page[after]" in params:
        after = decode_cursor(params["page[after]"])[1]
        chunk = [item for item in items if item["id"] > after][:size]
    elif "page[before]" in params:
        before = decode_cursor(params["page[before]"])[1]
        chunk = [item for item in items if item["id"] < before][-size:]
    else:
        chunk = items[:size]
    has_more = bool(chunk) and chunk[-1]["id"] != (ids[-1] if ids else None)
    after_cursor = encode_cursor(0.0, chunk[-1]["id"]) if chunk else None
    before_cursor = encode_cursor(0.0, chunk[0]["id"]) if chunk else None

    def link(direction: str, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        return f"{base}?{urlencode({f'page[{direction}]': cursor, 'page[size]': size})}"

    return {
        key: chunk,
        "meta": {
            "has_more": has_more,
            "after_cursor": after_cursor,
            "before_cursor": before_cursor,
        },
        "links": {"prev": link("before", before_cursor), "next": link("after", after_cursor)},
    }


def pairs(headers: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in headers.items()]


def public_ticket(ticket: dict[str, Any]) -> dict[str, Any]:
    """Outside the incremental export, tickets carry no `generated_timestamp` and (as
    recorded from the list endpoint) no `fields` alias of `custom_fields`."""
    return {k: v for k, v in ticket.items() if k not in ("generated_timestamp", "fields")}


def offset_page(
    items: list[dict[str, Any]], request: Request, key: str, path: str
) -> dict[str, Any]:
    """Offset pagination (`page`, `per_page` up to 100), links on the host that was called."""
    params = request.query_params
    base = f"{request.base_url}api/v2/{path}.json"
    try:
        per_page = min(max(int(params.get("per_page", 100)), 1), 100)
        page = max(int(params.get("page", 1)), 1)
    except ValueError as exc:
        raise SandboxInvalid(
            400, {"error": "InvalidPaginationParameter", "description": "page must be a number"}
        ) from exc
    chunk = items[(page - 1) * per_page : page * per_page]
    more = page * per_page < len(items)
    return {
        key: chunk,
        "next_page": f"{base}?page={page + 1}&per_page={per_page}" if more else None,
        "previous_page": f"{base}?page={page - 1}&per_page={per_page}" if page > 1 else None,
        "count": len(items),
    }


def ticket_answer(ticket: dict[str, Any]) -> dict[str, Any]:
    """A ticket as create and update answer it: with `fields`, without the export's
    `generated_timestamp` (fixture ticket_create_201_with_audit.json)."""
    return {k: v for k, v in ticket.items() if k != "generated_timestamp"}


def api_base(request: Request) -> str:
    """`http://host:port/api/v2/` of the host that was called: paging links point there,
    so a client following them stays on the sandbox (reference/zendesk-api.md: the host
    in `url` fields is not guaranteed, the links a client follows must work)."""
    return f"{request.base_url}api/v2/"
