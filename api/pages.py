"""The browser pages, served by the API process: no build step, no CDN, every asset local."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from api.auth import ROLES, BearerCredentials, Permission, Principal, authenticate
from api.models import Problem

PAGES = ("operator", "patrol", "supervisor", "report")
STATIC = resources.files("api") / "static"

# Pages load only their own scripts and styles; the live stream is same-origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _render(page: str) -> str:
    shell = (STATIC / "shell.html").read_text()
    body = (STATIC / f"{page}.body.html").read_text()
    return shell.replace("{{body}}", body).replace("{{page}}", page).replace("{{title}}", page)


RENDERED = {page: _render(page) for page in PAGES}
router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get("/ui")
@router.get("/ui/")
async def index() -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text())


@router.get("/ui/{page}")
async def page(page: str) -> HTMLResponse:
    if page not in RENDERED:
        return HTMLResponse("not found", status_code=404)
    return HTMLResponse(RENDERED[page])


class Me(BaseModel):
    name: str
    role: str
    permissions: list[str]


async def _me(request: Request, credentials: BearerCredentials) -> Principal:
    return await authenticate(request, credentials.credentials if credentials else None)


me_router = APIRouter(prefix="/api/v1", tags=["auth"])


@me_router.get("/me", response_model=Me, responses={401: {"model": Problem}})
async def me(principal: Annotated[Principal, Depends(_me)]) -> Me:
    """Who the token belongs to and what its role may do (the pages use it)."""
    allowed = sorted(p.value for p in Permission if principal.role in ROLES[p])
    return Me(name=principal.name, role=principal.role.value, permissions=allowed)


def install_pages(app: FastAPI) -> None:
    app.mount("/ui/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(router)
    app.include_router(me_router)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
