"""The HTTP API (contract §3): FastAPI on a psycopg async pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool

from api import health
from api.errors import install_error_handlers
from api.metrics_route import metrics_router
from larmkedja.settings import Settings


def create_app(*, settings: Settings, registry: CollectorRegistry | None = None) -> FastAPI:
    registry = registry or CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool = AsyncConnectionPool(
            settings.database_url, min_size=1, max_size=10, open=False, timeout=5.0
        )
        await pool.open(wait=False)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="larmkedja",
        version="1",
        summary="The alarm chain: operator queue, night patrol, answer times, device supervision.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = registry
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics_router(registry))
    return app
