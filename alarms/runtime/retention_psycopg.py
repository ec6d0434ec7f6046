"""Retention, run by the engine: what is older than its period goes (`larm_apply_retention`)."""

from __future__ import annotations

import logging
import time

import psycopg

from larmkedja.db import Conn
from larmkedja.db_connect import longer_deadline
from larmkedja.settings import Settings

log = logging.getLogger(__name__)
LOCK_WAIT_MS = 2000
RETRY_S = 60.0


class RetentionSweep:
    """Removes what is older than its retention (`larm_apply_retention`, periods from
    `larm_config`): raw events by dropping whole chunks, alarms and audit by their own."""

    name = "retention"

    def __init__(self, *, settings: Settings) -> None:
        self._every_s = settings.retention_every_s
        self._last = 0.0

    def run(self, conn: Conn) -> int:
        now = time.monotonic()
        if self._last and now - self._last < self._every_s:
            return 0
        self._last = now
        try:
            # Hourly, and long on a large database; but it never waits long for a lock: the
            # deadlines the engine owns come after it in the same tick (a batch of ingest held
            # up by a slow database once kept retention, and so `system.silent`, waiting).
            with conn.transaction(), longer_deadline(conn):
                conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'".encode())
                row = conn.execute("SELECT larm_apply_retention()").fetchone()
        except psycopg.errors.LockNotAvailable:
            log.info("retention waits for a lock; it tries again in %.0f s", RETRY_S)
            self._last = now - self._every_s + RETRY_S
            return 0
        removed = row[0] if row else {}
        log.info("retention applied: %s", removed)
        return int(removed.get("event_chunks", 0)) if isinstance(removed, dict) else 0
