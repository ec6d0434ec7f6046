"""A request's body must arrive within `LARM_API_BODY_TIMEOUT_S` of its first read: a client
that trickles a body byte by byte (slowloris) is answered 408 and let go, instead of holding
a connection and a task for as long as it likes. The size of a body is FastAPI's own
`max_body_size` (`LARM_API_MAX_BODY_BYTES`): answered 413 from the Content-Length before
anything is read, or as soon as a chunked body passes the limit.

A pure ASGI middleware, so it runs before FastAPI parses or authenticates. It raises
Starlette's HTTPException, which FastAPI passes on to the error handlers (any other exception
while a body is read becomes a 400)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooSlow(HTTPException):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(status_code=408, detail=f"the body must arrive within {timeout_s:g} s")


class BodyDeadline:
    def __init__(self, app: ASGIApp, *, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline: float | None = None

        async def bounded_receive() -> Message:
            nonlocal deadline
            deadline = deadline or loop.time() + self.timeout_s
            try:
                return await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
            except TimeoutError:
                raise BodyTooSlow(self.timeout_s) from None

        await self.app(scope, bounded_receive, send)
