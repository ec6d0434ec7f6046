"""The API's composition (`entrypoints/bootstrap.py` says why each process has its own
module)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from larmkedja import db
from larmkedja.settings import Settings


def api(settings: Settings) -> FastAPI:
    db.prepare(settings)
    return create_app(settings=settings)


def serve_api(settings: Settings) -> None:
    uvicorn.run(
        api(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        limit_concurrency=settings.api_max_connections,
    )
