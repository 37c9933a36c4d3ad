"""A local, faithful Sage Intacct XML gateway (ASGI; run it with uvicorn).

Protocol: `POST /ia/xml/xmlgw.phtml`, answered by `IntacctGateway` (errors inside HTTP
200 bodies, the fixtures' shapes). HTTP behaviour added here: one request at a time per
company (a concurrent one gets HTTP 429 with GW-0010), an optional request-rate limit,
fixed latency, and the shared fault injection (`sandbox/faults.py`), whose protocol
faults (`malformed_xml`, `invalid_session`, `rate_limit`) the gateway carries out.

Scenario API (JSON, not part of the Intacct protocol) under `/_sandbox/`: stats,
records/{OBJECT}, seed, vendors (create / modify / deactivate / delete), sessions/
invalidate, result_ids/expire, config, reset, faults, and triggers (outbound webhooks:
configure, disable, list deliveries).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from connector_pipeline import settings
from connector_pipeline.sandbox.faults import FaultInjector, FaultMiddleware, fault_router
from connector_pipeline.sandbox.intacct_data import to_json
from connector_pipeline.sandbox.intacct_envelope import rate_limited_body
from connector_pipeline.sandbox.intacct_formatting import SandboxFormatting
from connector_pipeline.sandbox.intacct_gateway import (
    DEFAULT_INTACCT_FAULTS,
    PROTOCOL_FAULTS,
    IntacctGateway,
    IntacctSandboxConfig,
)
from connector_pipeline.sandbox.intacct_ledger import ledger_router
from connector_pipeline.sandbox.intacct_scenario_text import unservable_text
from connector_pipeline.sandbox.intacct_triggers import (
    SAGE_RETRY_DELAYS_S,
    TRIGGER_OBJECTS,
    TriggerTarget,
)

__all__ = [
    "DEFAULT_INTACCT_FAULTS",
    "PROTOCOL_FAULTS",
    "IntacctSandbox",
    "IntacctSandboxConfig",
    "create_app",
    "sandbox_env",
    "serve",
]

_WINDOW_S = 1.0


class IntacctSandbox:
    """What `app.state.sandbox` holds: the gateway, the fault injector and the HTTP gate."""

    def __init__(self, config: IntacctSandboxConfig) -> None:
        self.config = config
        self.gateway = IntacctGateway(config)
        self.faults = FaultInjector(
            rate=config.fault_rate,
            kinds=tuple(config.fault_kinds),
            slow_ms=config.slow_ms,
            seed=config.fault_seed if config.fault_seed is not None else config.seed,
            script=deque(config.fault_script),
        )
        self._gate = threading.Lock()
        self._in_flight = 0
        self._recent: deque[float] = deque()
        self._rng = random.Random(config.seed)

    def admit(self) -> tuple[bool, float | None]:
        """(admitted, retry_after): refuse overlap and requests over the rate."""
        with self._gate:
            now = time.monotonic()
            rate = self.config.requests_per_second
            if rate:
                while self._recent and now - self._recent[0] >= _WINDOW_S:
                    self._recent.popleft()
                if len(self._recent) >= rate * _WINDOW_S:
                    with self.gateway.lock:
                        self.gateway.stats.rejected_rate += 1
                    return False, max(0.0, _WINDOW_S - (now - self._recent[0]))
            if self.config.one_request_at_a_time and self._in_flight:
                with self.gateway.lock:
                    self.gateway.stats.rejected_concurrent += 1
                return False, self.config.retry_after_s
            self._in_flight += 1
            if rate:
                self._recent.append(now)
            return True, None

    def release(self) -> None:
        with self._gate:
            self._in_flight -= 1

    def pick_vendors(self, count: int | None, vendor_ids: list[str] | None) -> list[dict[str, Any]]:
        gateway = self.gateway
        with gateway.lock:
            if vendor_ids is not None:
                chosen = [gateway.find_by_id("VENDOR", v) for v in vendor_ids]
                unknown = [v for v, r in zip(vendor_ids, chosen, strict=True) if r is None]
                if unknown:
                    raise HTTPException(404, f"unknown VENDORID(s): {', '.join(unknown)}")
                return [r for r in chosen if r is not None]
            vendors = sorted(gateway.records["VENDOR"].values(), key=lambda r: r["RECORDNO"])
            return self._rng.sample(vendors, min(count or 0, len(vendors)))


def _rate_limited(retry_after: float | None) -> Response:
    headers = {}
    if retry_after is not None:
        # Whole seconds as HTTP requires, but never 0 for a real wait.
        headers["Retry-After"] = str(max(1, round(retry_after + 0.499)))
    return Response(
        rate_limited_body(),
        status_code=429,
        media_type=settings.INTACCT_CONTENT_TYPE,
        headers=headers,
    )


class SeedBody(BaseModel):
    vendors: int = 0
    customers: int = 0
    seed: int | None = None


class Selection(BaseModel):
    count: int | None = None
    vendor_ids: list[str] | None = None


class NewVendors(BaseModel):
    vendors: list[dict[str, Any]]


class ConfigBody(BaseModel):
    session_timeout_s: float | None = None
    requests_per_second: float | None = None
    one_request_at_a_time: bool | None = None
    latency_ms: float | None = None
    result_id_ttl_s: float | None = None
    retry_after_s: float | None = None
    # The API user's preferences (readUserFormatting); an unsupported date format is
    # allowed on purpose, so `ml-connector check` can be tested against one.
    user_dateformat: str | None = None
    user_gmt_offset: str | None = None
    user_clock: str | None = None
    user_locale: str | None = None
    # Platform Services set-up: remove the ticket object or its VENDOR relationship field.
    ticket_object_exists: bool | None = None
    ticket_relationship_exists: bool | None = None


class TriggerBody(BaseModel):
    """Where the sandbox delivers its outbound webhooks, and the faults to inject."""

    url: str
    client_id: str = settings.INTACCT_SANDBOX_TRIGGER_CLIENT_ID
    client_secret: str = settings.INTACCT_SANDBOX_TRIGGER_CLIENT_SECRET
    objects: list[str] = list(TRIGGER_OBJECTS)
    retry_delays_s: list[float] = list(SAGE_RETRY_DELAYS_S)
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay_s: float = 0.0


def create_app(config: IntacctSandboxConfig | None = None) -> FastAPI:
    """The sandbox gateway app; `app.state.sandbox` is the `IntacctSandbox` behind it."""
    config = config or IntacctSandboxConfig()
    sandbox = IntacctSandbox(config)
    gateway = sandbox.gateway
    if config.trigger_url:
        gateway.triggers.configure(
            TriggerTarget(
                url=config.trigger_url,
                client_id=config.trigger_client_id,
                client_secret=config.trigger_client_secret,
                company_id=config.company_id,
            )
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            gateway.triggers.close()

    app = FastAPI(
        title="Sage Intacct sandbox gateway", docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.sandbox = sandbox
    app.add_middleware(FaultMiddleware, injector=sandbox.faults)
    app.include_router(fault_router(sandbox.faults))
    app.include_router(ledger_router(gateway))

    @app.post(settings.INTACCT_SANDBOX_PATH)
    async def xml_gateway(request: Request) -> Response:
        body = await request.body()
        fault = getattr(request.state, "fault", None)
        if fault == "rate_limit":
            with gateway.lock:
                gateway.stats.protocol_faults[fault] += 1
            return _rate_limited(config.retry_after_s)
        admitted, retry_after = sandbox.admit()
        if not admitted:
            return _rate_limited(retry_after)
        try:
            if config.latency_ms:
                await asyncio.sleep(config.latency_ms / 1000)
            endpoint = str(request.base_url).rstrip("/") + settings.INTACCT_SANDBOX_PATH
            answer = await run_in_threadpool(gateway.handle, body, endpoint, fault)
        finally:
            sandbox.release()
        return Response(answer, media_type=settings.INTACCT_CONTENT_TYPE)

    prefix = "/_sandbox"

    @app.get(f"{prefix}/stats")
    def stats() -> dict[str, Any]:
        with gateway.lock:
            out = gateway.stats.as_dict()
            out["records"] = {name: len(rows) for name, rows in gateway.records.items()}
            out["sessions_active"] = len(gateway.sessions)
        out["faults_injected"] = sandbox.faults.snapshot()["injected"]
        return out

    @app.get(prefix + "/records/{object_name}")
    def records(object_name: str) -> list[dict[str, Any]]:
        rows = gateway.records_json(object_name)
        if rows is None:
            raise HTTPException(404, f"unknown object {object_name}")
        return [to_json(r) for r in rows]

    @app.post(f"{prefix}/seed")
    def seed(body: SeedBody) -> dict[str, Any]:
        gateway.seed(body.vendors, body.customers, body.seed)
        return {"vendors": body.vendors, "customers": body.customers}

    @app.post(f"{prefix}/vendors")
    def add_vendors(body: NewVendors) -> list[dict[str, Any]]:
        for index, vendor in enumerate(body.vendors):
            problem = unservable_text(vendor)
            if problem:
                raise HTTPException(422, f"vendors[{index}]: {problem}")
        try:
            return [to_json(gateway.add_vendor(v)) for v in body.vendors]
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @app.post(f"{prefix}/vendors/modify")
    def modify(body: Selection) -> dict[str, Any]:
        changed = []
        with gateway.lock:
            for record in sandbox.pick_vendors(body.count, body.vendor_ids):
                phone = (
                    f"+1-555-{sandbox._rng.randint(100, 999)}-{sandbox._rng.randint(1000, 9999)}"
                )
                total = f"{sandbox._rng.randint(0, 250_000) / 100:.2f}"
                gateway.touch(
                    "VENDOR",
                    record,
                    {"TOTALDUE": total, "DISPLAYCONTACT": {"PHONE1": phone}},
                    scenario=True,
                )
                changed.append(record["VENDORID"])
        return {"modified": changed}

    @app.post(f"{prefix}/vendors/deactivate")
    def deactivate(body: Selection) -> dict[str, Any]:
        changed = []
        with gateway.lock:
            for record in sandbox.pick_vendors(body.count, body.vendor_ids):
                gateway.touch("VENDOR", record, {"STATUS": "inactive"}, scenario=True)
                changed.append(record["VENDORID"])
        return {"deactivated": changed}

    @app.post(f"{prefix}/vendors/delete")
    def delete(body: Selection) -> dict[str, Any]:
        removed = []
        with gateway.lock:
            for record in sandbox.pick_vendors(body.count, body.vendor_ids):
                del gateway.records["VENDOR"][record["RECORDNO"]]
                removed.append(record["VENDORID"])
        return {"deleted": removed}

    @app.post(f"{prefix}/sessions/invalidate")
    def invalidate() -> dict[str, Any]:
        with gateway.lock:
            count = len(gateway.sessions)
            gateway.sessions.clear()
        return {"invalidated": count}

    @app.post(f"{prefix}/result_ids/expire")
    def expire_result_ids() -> dict[str, Any]:
        with gateway.lock:
            count = len(gateway.result_sets)
            gateway.result_sets.clear()
        return {"expired": count}

    @app.post(f"{prefix}/config")
    def configure(body: ConfigBody) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        if "user_gmt_offset" in changes:
            _check_offset(str(changes["user_gmt_offset"]))
        with gateway.lock:
            for key, value in changes.items():
                setattr(config, key, value)
            if {"ticket_object_exists", "ticket_relationship_exists"} & set(changes):
                gateway.redefine_objects()
        return {k: getattr(config, k) for k in ConfigBody.model_fields}

    @app.post(f"{prefix}/triggers")
    def configure_triggers(body: TriggerBody) -> dict[str, Any]:
        gateway.triggers.configure(
            TriggerTarget(
                url=body.url,
                client_id=body.client_id,
                client_secret=body.client_secret,
                company_id=config.company_id,
                objects=tuple(body.objects),
                retry_delays_s=tuple(body.retry_delays_s),
                drop_rate=body.drop_rate,
                duplicate_rate=body.duplicate_rate,
                delay_s=body.delay_s,
            )
        )
        return {"configured": True, "url": body.url}

    @app.delete(f"{prefix}/triggers")
    def disable_triggers() -> dict[str, Any]:
        gateway.triggers.configure(None)
        return {"configured": False}

    @app.get(f"{prefix}/triggers/deliveries")
    def trigger_deliveries() -> dict[str, Any]:
        return {
            "deliveries": gateway.triggers.deliveries(),
            "stats": dict(gateway.triggers.stats),
            "idle": gateway.triggers.idle(),
        }

    @app.post(f"{prefix}/reset")
    def reset() -> dict[str, Any]:
        gateway.reset()
        sandbox.faults.configure(rate=config.fault_rate, script=list(config.fault_script))
        return {"reset": True}

    return app


def _check_offset(text: str) -> None:
    try:
        SandboxFormatting(gmtoffset=text).tz  # noqa: B018 - parsing is the check
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def sandbox_env(base_url: str, config: IntacctSandboxConfig | None = None) -> dict[str, str]:
    """The INTACCT_* variables that point ml-connector at a sandbox served at `base_url`."""
    config = config or IntacctSandboxConfig()
    return {
        settings.ENV_INTACCT_SENDER_ID: config.sender_id,
        settings.ENV_INTACCT_SENDER_PASSWORD: config.sender_password,
        settings.ENV_INTACCT_COMPANY_ID: config.company_id,
        settings.ENV_INTACCT_USER_ID: config.user_id,
        settings.ENV_INTACCT_USER_PASSWORD: config.user_password,
        settings.ENV_INTACCT_ENDPOINT_URL: base_url.rstrip("/") + settings.INTACCT_SANDBOX_PATH,
        settings.ENV_INTACCT_ALLOW_CUSTOM_ENDPOINT: "1",
        # What the webhook receiver verifies the sandbox's outbound webhooks with.
        settings.ENV_INTACCT_WEBHOOK_CLIENT_ID: config.trigger_client_id,
        settings.ENV_INTACCT_WEBHOOK_KEY: config.trigger_client_secret,
    }


def serve(
    config: IntacctSandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> None:
    """Run the sandbox in the foreground (the `ml-connector sandbox` command uses this)."""
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
