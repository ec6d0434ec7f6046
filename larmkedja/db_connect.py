"""Every process's database connection: a deadline on every query, keepalives, any number of
hosts (docs/scaling.md, the high-availability topology).

A hung primary (a stopped host, a full disk, a partition that drops packets) never answers; on
loopback, or whenever the peer's kernel still runs, TCP keepalives and `tcp_user_timeout` are
answered by the kernel and notice nothing. So the deadline is the client's own: psycopg waits
for the server with a timeout (`Connection.wait`, psycopg ≥ 3.2), and a query with no answer
within `deadline_s` closes its connection and raises `QueryDeadline` (an `OperationalError`:
every process already treats that as "reconnect and retry"). A pool discards the closed
connection; the next one follows `target_session_attrs=read-write` to whichever host is the
primary now.

A wait the caller gives its own timeout (`notifies(timeout=…)`) keeps it: a LISTEN connection
may be quiet for as long as it likes, so listeners pass a timeout and ping between waits.

`client_conninfo` adds what libpq does on its side, unless the URL says otherwise: a connect
timeout per host (a stopped host accepts TCP and never answers the start-up), TCP keepalives
and `tcp_user_timeout` (a host that is gone, not stopped); and, for the server, a check that
the client is still there (`client_connection_check_interval`), so a query whose client gave
up does not hold its locks to the end, and no JIT compilation (`jit`: see SERVER_OPTIONS).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg.abc import PQGen
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

RV = TypeVar("RV")

# libpq's own side: a start-up answered within this (per host), keepalives after this much
# silence, a connection whose sent data is unacknowledged this long is dead.
CLIENT_DEFAULTS: dict[str, str] = {
    "connect_timeout": "3",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
}
# The server's side: a backend whose client has gone (a deadline closed it) stops its query
# within this many ms instead of holding its locks until the query ends. And no JIT: PostgreSQL
# compiles a statement whose estimated cost passes `jit_above_cost`, each time it runs, and our
# statements are short ones run often. The engine's offline sweep over 250,000 devices
# (estimated high, run every tick) spent 0.40 of its 0.46 s compiling: 408 ms a sweep with JIT,
# 69 without (docs/bench.md, 2026-12-08); the month's report is no slower without it.
SERVER_OPTIONS = {"client_connection_check_interval": "2000", "jit": "off"}
DEFAULT_DEADLINE_S = 5.0


class QueryDeadline(psycopg.OperationalError):
    """The database did not answer within the deadline; the connection is closed."""


def client_conninfo(conninfo: str) -> str:
    """`conninfo` with the client defaults added where it does not set them itself."""
    params = conninfo_to_dict(conninfo)
    for key, value in CLIENT_DEFAULTS.items():
        params.setdefault(key, value)
    options = str(params.get("options") or "")
    for key, value in SERVER_OPTIONS.items():
        if key not in options:
            options = f"{options} -c {key}={value}".strip()
    params["options"] = options
    return make_conninfo("", **params)


def _expire(pgconn: Any, deadline_s: float) -> QueryDeadline:
    log.warning("no answer from the database within %.1f s; connection closed", deadline_s)
    pgconn.finish()
    return QueryDeadline(f"no answer from the database within {deadline_s:g} s")


class DeadlineConnection(psycopg.Connection[tuple[Any, ...]]):
    """A psycopg connection whose every wait for the server has a deadline."""

    deadline_s: float = DEFAULT_DEADLINE_S

    def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        if timeout is not None:
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.deadline_s)
        except errors._WaitTimeout:
            raise _expire(self.pgconn, self.deadline_s) from None


class AsyncDeadlineConnection(psycopg.AsyncConnection[tuple[Any, ...]]):
    """The same for asyncio (the API's pool, the stream's listener, the gateway)."""

    deadline_s: float = DEFAULT_DEADLINE_S

    async def wait(
        self,
        gen: PQGen[RV],
        interval: float = 0.1,
        timeout: float | None = None,  # noqa: ASYNC109 - psycopg's own signature, overridden
    ) -> RV:
        if timeout is not None:
            return await super().wait(gen, interval, timeout)
        try:
            return await super().wait(gen, interval, self.deadline_s)
        except errors._WaitTimeout:
            raise _expire(self.pgconn, self.deadline_s) from None

    @classmethod
    async def connect(  # type: ignore[override]
        cls, conninfo: str = "", *, deadline_s: float = DEFAULT_DEADLINE_S, **kwargs: Any
    ) -> AsyncDeadlineConnection:
        """As psycopg's, with the deadline (a pool passes it through its `kwargs`)."""
        conn = await super().connect(client_conninfo(conninfo), **kwargs)
        conn.deadline_s = deadline_s
        return conn


# What a statement known to be long may take: retention on a large database, a year's report.
LONG_DEADLINE_S = 300.0


@contextmanager
def longer_deadline(conn: object, seconds: float = LONG_DEADLINE_S) -> Iterator[None]:
    """Give the statements inside a longer deadline than the connection's (a hung host then
    holds only this work that long). A connection without a deadline is left as it is."""
    if not isinstance(conn, DeadlineConnection | AsyncDeadlineConnection):
        yield
        return
    before = conn.deadline_s
    conn.deadline_s = max(before, seconds)
    try:
        yield
    finally:
        conn.deadline_s = before


def async_pool(
    conninfo: str, *, deadline_s: float, min_size: int, max_size: int, timeout: float = 5.0
) -> AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]]:
    """An asyncio pool of deadline connections, each checked before it is lent (one round
    trip: a connection to a host that died or hung is dropped, not handed to a request).

    psycopg_pool retries a failed connection with a doubling delay for `reconnect_timeout`
    (5 min by default): after a 20 s failover it would wait 16 s more before trying the new
    primary. Here an attempt gives up after `deadline_s` and the next request starts a fresh
    one, so the pool is back within a few seconds of the primary."""
    pool: AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]] = AsyncConnectionPool(
        conninfo,
        connection_class=AsyncDeadlineConnection,
        kwargs={"deadline_s": deadline_s},
        check=AsyncConnectionPool.check_connection,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        reconnect_timeout=deadline_s,
        open=False,
    )
    return pool


def connect(
    conninfo: str, *, deadline_s: float = DEFAULT_DEADLINE_S, **kwargs: Any
) -> DeadlineConnection:
    """A connection with the client defaults and a deadline on every query."""
    conn = DeadlineConnection.connect(client_conninfo(conninfo), **kwargs)
    conn.deadline_s = deadline_s
    return conn
