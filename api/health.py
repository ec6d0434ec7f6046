"""/healthz (the process answers) and /readyz (the system works and is not silent)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from alarms.selfwatch import silence_psycopg
from larmkedja.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

SERVICES_SQL = """
SELECT service, count(*) FILTER (WHERE coalesce((details->>'mqtt_connected')::boolean, true))
FROM service_heartbeats
WHERE seen_at > now() - make_interval(secs => %s)
GROUP BY service
"""


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, bool]
    silent_reasons: list[str] = []


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> Any:
    """Ready when the database and the broker answer, an ingest process is connected, an
    engine is alive, and the system is not silent (see docs/devices.md, `system.silent`)."""
    settings: Settings = request.app.state.settings
    checks = {
        "database": False,
        "broker": False,
        "ingest": False,
        "engine": False,
        "not_silent": False,
    }
    reasons: list[str] = []
    try:
        async with request.app.state.pool.connection(timeout=2.0) as conn:
            cur = await conn.execute(SERVICES_SQL, (settings.service_stale_s,))
            alive = {str(service): int(n) for service, n in await cur.fetchall()}
            cur = await conn.execute(silence_psycopg.SILENCE, silence_psycopg.params(settings))
            reasons = silence_psycopg.reasons(settings, await cur.fetchall())
        checks["database"] = True
        checks["ingest"] = alive.get("ingest", 0) > 0
        checks["engine"] = alive.get("engine", 0) > 0
        checks["not_silent"] = not reasons
    except Exception:
        log.warning("readiness: database check failed", exc_info=True)
    checks["broker"] = await _broker_reachable(settings)
    ready = all(checks.values())
    body = Readiness(
        status="ready" if ready else "not_ready", checks=checks, silent_reasons=reasons
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _broker_reachable(settings: Settings) -> bool:
    """Some receiving path takes connections (one of two brokers down is not an outage)."""
    for host, port in settings.broker_paths():
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1.0)
        except (OSError, TimeoutError):
            continue
        writer.close()
        await writer.wait_closed()
        return True
    return False
