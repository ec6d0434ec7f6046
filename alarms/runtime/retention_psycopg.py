"""Retention, run by the engine: what is older than its period goes (`larm_apply_retention`)."""

from __future__ import annotations

import logging
import time

from larmkedja.db import Conn
from larmkedja.db_connect import longer_deadline
from larmkedja.settings import Settings

log = logging.getLogger(__name__)


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
        with longer_deadline(conn):  # hourly, and long on a large database
            row = conn.execute("SELECT larm_apply_retention()").fetchone()
        removed = row[0] if row else {}
        log.info("retention applied: %s", removed)
        return int(removed.get("event_chunks", 0)) if isinstance(removed, dict) else 0
