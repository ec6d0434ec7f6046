"""/healthz (the process answers) and /readyz (database, broker and ingest are working)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from larmkedja.settings import Settings

router = APIRouter(tags=["health"])

READY_SQL = """
SELECT count(*) FILTER (WHERE (details->>'mqtt_connected')::boolean)
FROM service_heartbeats
WHERE service = 'ingest' AND seen_at > now() - make_interval(secs => %s)
"""


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, bool]


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> Any:
    settings: Settings = request.app.state.settings
    checks = {"database": False, "broker": False, "ingest": False}
    try:
        async with request.app.state.pool.connection(timeout=2.0) as conn:
            cur = await conn.execute(READY_SQL, (settings.service_stale_s,))
            row = await cur.fetchone()
        checks["database"] = True
        checks["ingest"] = bool(row and row[0])
    except Exception:
        checks["database"] = False
    checks["broker"] = await _broker_reachable(settings)
    ready = all(checks.values())
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _broker_reachable(settings: Settings) -> bool:
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(settings.mqtt_host, settings.mqtt_port), timeout=1.0
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True
