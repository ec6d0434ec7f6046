"""A hung database host never answers: every query has a client-side deadline, the connection is
closed and the next one works (docs/scaling.md). The host is hung by a proxy that takes bytes
and passes nothing on (tests/freezer.py), as the kernel of a stopped host does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from larmkedja import db_connect
from larmkedja.db_connect import AsyncDeadlineConnection, QueryDeadline
from larmkedja.settings import Settings
from tests.freezer import FreezingProxy
from tests.helpers import running_api, token, wait_until


@pytest.fixture
def proxy(database_url: str) -> Iterator[FreezingProxy]:
    parts = urlsplit(database_url)
    server = FreezingProxy(target_host=str(parts.hostname), target_port=int(parts.port or 5432))
    yield server
    server.close()


def through(database_url: str, port: int) -> str:
    parts = urlsplit(database_url)
    auth = parts.netloc.rsplit("@", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{auth}@127.0.0.1:{port}"))


def test_a_query_to_a_hung_host_ends_at_the_deadline(
    database_url: str, proxy: FreezingProxy
) -> None:
    url = through(database_url, proxy.port)
    conn = db_connect.connect(url, deadline_s=1.5, autocommit=True)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    proxy.freeze()
    started = time.monotonic()
    with pytest.raises(QueryDeadline):
        conn.execute("SELECT 2")
    assert 1.4 < time.monotonic() - started < 4
    assert conn.closed
    proxy.thaw()
    proxy.cut()
    with db_connect.connect(url, deadline_s=1.5, autocommit=True) as again:
        assert again.execute("SELECT 3").fetchone() == (3,)


def test_plain_psycopg_waits_for_ever_on_a_hung_host(
    database_url: str, proxy: FreezingProxy
) -> None:
    """Why the deadline exists: keepalives are answered by a stopped host's kernel."""
    url = through(database_url, proxy.port)
    conn = psycopg.connect(db_connect.client_conninfo(url), autocommit=True)
    proxy.freeze()
    ended = threading.Event()

    def query() -> None:
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            pass
        ended.set()

    threading.Thread(target=query, daemon=True).start()
    assert not ended.wait(4.0), "the query ended although the host never answered"
    proxy.thaw()
    assert ended.wait(5.0)
    conn.close()


def test_a_listener_keeps_its_own_timeout(database_url: str) -> None:
    """A LISTEN connection may be quiet longer than the deadline: notifies() has its own."""
    with db_connect.connect(database_url, deadline_s=0.5, autocommit=True) as conn:
        conn.execute("LISTEN larm_test")
        assert list(conn.notifies(timeout=1.5)) == []
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_host_that_accepts_and_never_answers_is_skipped(database_url: str) -> None:
    """A multi-host URL: the first host takes the TCP connection and says nothing (a stopped
    postmaster); the connect timeout moves on to the next, which answers."""
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        parts = urlsplit(database_url)
        auth = parts.netloc.rsplit("@", 1)[0]
        hosts = f"127.0.0.1:{silent.getsockname()[1]},{parts.hostname}:{parts.port}"
        url = urlunsplit(parts._replace(netloc=f"{auth}@{hosts}"))
        started = time.monotonic()
        with db_connect.connect(
            url + "?target_session_attrs=read-write&connect_timeout=2", autocommit=True
        ) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert time.monotonic() - started < 6
    finally:
        silent.close()


async def test_the_pool_replaces_a_connection_to_a_hung_host(
    database_url: str, proxy: FreezingProxy
) -> None:
    url = through(database_url, proxy.port)
    pool: AsyncConnectionPool[AsyncDeadlineConnection] = AsyncConnectionPool(
        url,
        connection_class=AsyncDeadlineConnection,
        kwargs={"deadline_s": 1.0, "autocommit": True},
        check=AsyncConnectionPool.check_connection,
        min_size=1,
        max_size=2,
        open=False,
        timeout=4,
    )
    await pool.open(wait=True)
    try:
        proxy.freeze()
        started = time.monotonic()
        # The checked connection meets the deadline and is dropped; a new one cannot start
        # up either: the request ends at the pool's timeout, not never.
        with pytest.raises(PoolTimeout):
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        assert time.monotonic() - started < 8
        proxy.thaw()
        proxy.cut()
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT 2")
            assert await cur.fetchone() == (2,)
    finally:
        await pool.close()


def test_a_statement_known_to_be_long_gets_a_longer_deadline(database_url: str) -> None:
    """Retention and reports: a slow answer is not a hung host."""
    conn = db_connect.connect(database_url, deadline_s=0.5, autocommit=True)
    try:
        with db_connect.longer_deadline(conn, 5.0):
            assert conn.execute("SELECT pg_sleep(1), 1").fetchone() == ("", 1)
        assert conn.deadline_s == 0.5
        with pytest.raises(QueryDeadline):
            conn.execute("SELECT pg_sleep(1)")
    finally:
        conn.close()


def test_the_api_answers_503_while_the_database_hangs_and_200_after(
    database_url: str, proxy: FreezingProxy
) -> None:
    """A hung primary (before the fail-over): a clean 503 with Retry-After, no 500 and no stack
    trace in the log; the same request works again once the database answers."""
    settings = Settings(database_url=through(database_url, proxy.port), db_deadline_s=1.5)
    headers = token(settings, "operator")
    with running_api(settings) as url:
        assert httpx.get(f"{url}/api/v1/alarms", headers=headers, timeout=10).status_code == 200
        proxy.freeze()
        started = time.monotonic()
        hung = httpx.get(f"{url}/api/v1/alarms", headers=headers, timeout=30)
        assert hung.status_code == 503, hung.text
        assert hung.headers["Retry-After"] == "2"
        assert hung.json()["error"] == "unavailable"
        assert time.monotonic() - started < 10
        proxy.thaw()
        proxy.cut()
        wait_until(
            lambda: (
                httpx.get(f"{url}/api/v1/alarms", headers=headers, timeout=10).status_code == 200
            ),
            timeout=15,
            what="the API answers again",
        )
