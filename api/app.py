"""The HTTP API (contract §3): FastAPI on a psycopg async pool."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from api import (
    health,
    routes_alarms,
    routes_cases,
    routes_devices,
    routes_escalations,
    routes_handover_notes,
    routes_incidents,
    routes_kpi,
    routes_persons,
    routes_reports,
    routes_supervision,
    stream,
)
from api.auth import FailureLimiter, TokenCache
from api.errors import install_error_handlers
from api.limits import BodyDeadline
from api.metrics import ApiMetrics
from api.metrics_route import metrics_router
from api.models import Problem
from api.pages import install_pages
from larmkedja.db_connect import async_pool
from larmkedja.settings import Settings


def create_app(*, settings: Settings, registry: CollectorRegistry | None = None) -> FastAPI:
    registry = registry or CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = async_pool(
            settings.database_url, deadline_s=settings.db_deadline_s, min_size=1, max_size=10
        )
        await pool.open(wait=False)
        hub = stream.ChangeHub(
            conninfo=settings.database_url, pool=pool, deadline_s=settings.db_deadline_s
        )
        listener = asyncio.create_task(hub.run(), name="change-listener")
        app.state.pool = pool
        app.state.hub = hub
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await pool.close()

    app = FastAPI(
        title="larmkedja",
        version="1",
        summary="The alarm chain: operator queue, night patrol, answer times, device supervision.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; /openapi.json is the reference
        redoc_url=None,
        # Every route may answer 400 (an unreadable body), 408 (a body too slow to arrive),
        # 413 (a body over the limit), 429 (too many failed sign-ins).
        responses={code: {"model": Problem} for code in (400, 408, 413, 429)},
        max_body_size=settings.api_max_body_bytes,
    )
    app.add_middleware(BodyDeadline, timeout_s=settings.api_body_timeout_s)
    app.state.settings = settings
    app.state.registry = registry
    app.state.api_metrics = ApiMetrics(registry=registry)
    app.state.tokens = TokenCache(ttl_s=settings.token_cache_s)
    app.state.failures = FailureLimiter(per_minute=settings.auth_failures_per_minute)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics_router(registry))
    app.include_router(routes_alarms.router)
    app.include_router(routes_cases.router)
    app.include_router(routes_incidents.router)
    app.include_router(routes_kpi.router)
    app.include_router(routes_devices.router)
    app.include_router(routes_escalations.router)
    app.include_router(routes_supervision.router)
    app.include_router(routes_persons.router)
    app.include_router(routes_handover_notes.router)
    app.include_router(routes_reports.router)
    app.include_router(stream.router)
    install_pages(app)
    _list_outcomes_in_schema(app, settings.outcome_codes)
    return app


def _list_outcomes_in_schema(app: FastAPI, codes: list[str]) -> None:
    """The outcome codes are configured, so the schema of a resolve (and of the patrol's
    complete) lists this deployment's: a client, and schemathesis, know before sending what
    the server takes."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        models = schema["components"]["schemas"]
        models["ResolveIn"]["properties"]["outcome"]["enum"] = codes
        code = models["CompleteIn"]["properties"]["code"]
        code["anyOf"] = [{"type": "string", "enum": codes}, {"type": "null"}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
