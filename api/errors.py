"""Errors as JSON without stack traces; every unexpected failure is logged, not shown."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from alarms.cases import UnknownOutcome, check_outcome
from larmkedja.db import AsyncConn

log = logging.getLogger(__name__)


def invalid(where: tuple[str, ...], message: str) -> RequestValidationError:
    """A 422 in FastAPI's own shape (`{"detail": [...]}`), so every 422 matches the schema."""
    return RequestValidationError([{"type": "value_error", "loc": where, "msg": message}])


def require_configured_outcome(request: Request, code: str, *, field: str) -> None:
    """422 (as `invalid`) unless `code` is one of this deployment's outcome codes."""
    try:
        check_outcome(code, request.app.state.settings.outcome_codes)
    except UnknownOutcome as exc:
        raise invalid(("body", field), str(exc)) from None


class ApiError(Exception):
    """An error with a status and a message meant for the client."""

    def __init__(self, *, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@contextlib.asynccontextmanager
async def counted_action(
    request: Request,
    action: str,
    *,
    what: str,
    missing: type[Exception],
    refused: type[Exception],
) -> AsyncIterator[AsyncConn]:
    """A connection of the pool for an operator's or the patrol's action, the action counted by
    its result; 404 for `missing` and 409 for `refused` (an action its state does not allow)."""
    actions = request.app.state.api_metrics.actions
    try:
        async with request.app.state.pool.connection() as conn:
            yield conn
    except missing:
        actions.labels(action, "not_found").inc()
        raise ApiError(status=404, code="not_found", message=f"no such {what}") from None
    except refused as exc:
        actions.labels(action, "conflict").inc()
        raise ApiError(status=409, code="conflict", message=str(exc)) from None
    actions.labels(action, "ok").inc()


def allowed_methods(app: FastAPI, path: str) -> str:
    """Every method of every route of `path` (Starlette's 405 names only the first route's, and
    a path's GET and PUT are two routes)."""
    methods: set[str] = set()
    for route in app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own errors (an unreadable body, no such route) in the same shape."""
        code = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            408: "too_slow",
            413: "too_large",
        }.get(exc.status_code, "error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(app, request.url.path)}
        body = {"error": code, "message": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(psycopg.errors.UniqueViolation)
    async def _duplicate(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"error": "conflict", "message": "another record already has this value"},
            status_code=409,
        )

    @app.exception_handler(psycopg.DataError)
    async def _bad_value(request: Request, exc: Exception) -> JSONResponse:
        """A value PostgreSQL cannot hold (a NUL in a text, say): the caller's input, a 422."""
        detail = [{"type": "value_error", "loc": ["body"], "msg": "a value cannot be stored"}]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        """The database does not answer (a primary being replaced, a hung host, a query past
        its deadline): a 503 to try again, not a 500 with a stack trace in the log."""
        log.warning(
            "database unavailable on %s %s (%s)",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return JSONResponse(
            {"error": "unavailable", "message": "the database is not answering; try again"},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": "internal", "message": "internal error; it has been logged"},
            status_code=500,
        )
