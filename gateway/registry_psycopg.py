"""The sender registry and the gateway's dead letters, in PostgreSQL.

Lookups are cached for a few seconds (a revoked sender is refused within that time) and the
last answer is kept: when the database is away, known senders keep getting through.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from dataclasses import dataclass

import psycopg
from psycopg.rows import kwargs_row
from psycopg_pool import AsyncConnectionPool

from gateway.errors import RegistryUnavailable
from gateway.model import Protocol, Sender
from larmkedja.events import DeadLetter

log = logging.getLogger(__name__)

FIND_SENDER = """
SELECT site, device_id, secret, heartbeat_s, plain FROM gateway_senders
WHERE protocol = %s AND sender_id = %s AND revoked_at IS NULL
"""
EVENT_STORED = "SELECT 1 FROM event_ids WHERE event_id = %s"
INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (received_at, topic, site, reason, detail, payload_head)
VALUES (%s, %s, %s, %s, %s, %s)
"""


@dataclass(slots=True)
class _Cached:
    sender: Sender | None
    fetched: float


class Registry:
    def __init__(self, *, pool: AsyncConnectionPool, cache_s: float) -> None:
        self._pool = pool
        self._cache_s = cache_s
        self._cache: dict[tuple[Protocol, str], _Cached] = {}

    async def sender(self, protocol: Protocol, sender_id: str) -> Sender | None:
        """The registered sender, None if there is none (or it is revoked)."""
        key = (protocol, sender_id)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached.fetched < self._cache_s:
            return cached.sender
        # The row is the sender: its columns are the fields of `Sender` (named once, in the query).
        as_sender = kwargs_row(functools.partial(Sender, protocol=protocol, sender_id=sender_id))
        try:
            async with (
                self._pool.connection(timeout=2.0) as conn,
                conn.cursor(row_factory=as_sender) as cur,
            ):
                await cur.execute(FIND_SENDER, (protocol.value, sender_id))
                found = await cur.fetchone()
        except (psycopg.Error, TimeoutError, OSError) as exc:
            if cached is not None:
                return cached.sender  # stale, but the database is away: keep serving
            raise RegistryUnavailable(f"sender registry unavailable: {exc}") from exc
        if len(self._cache) > 500_000:
            self._cache.clear()
        self._cache[key] = _Cached(sender=found, fetched=now)
        return found

    async def event_stored(self, event_id: uuid.UUID) -> bool:
        """Whether ingest has stored this event id (False also when it cannot tell)."""
        try:
            async with self._pool.connection(timeout=2.0) as conn:
                row = await (await conn.execute(EVENT_STORED, (event_id,))).fetchone()
        except (psycopg.Error, TimeoutError, OSError):
            return False
        return row is not None

    async def dead_letter(self, letter: DeadLetter[str]) -> bool:
        row = (
            letter.received_at,
            letter.topic,
            letter.site,
            letter.reason,
            letter.detail[:500],
            letter.payload_head[:256],
        )
        try:
            async with self._pool.connection(timeout=2.0) as conn:
                await conn.execute(INSERT_DEAD_LETTER, row)
        except (psycopg.Error, TimeoutError, OSError) as exc:
            log.warning("gateway: dead letter not stored: %s", exc)
            return False
        return True
