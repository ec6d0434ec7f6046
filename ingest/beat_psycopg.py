"""Ingest's own heartbeat: a row in `service_heartbeats` every `LARM_SERVICE_HEARTBEAT_S`
(and at once on a state change), written from its own thread and connection, so a writer
stuck on a slow database still shows as alive-but-not-committing (and the engine says so)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from larmkedja import db, db_connect
from larmkedja.settings import Settings

log = logging.getLogger(__name__)


class Beat:
    def __init__(
        self,
        *,
        settings: Settings,
        details: Callable[[], dict[str, object]],
        stopping: threading.Event,
    ) -> None:
        self._settings = settings
        self._details = details
        self._stopping = stopping
        self.now = threading.Event()  # set it to report a state change without waiting

    def forever(self) -> None:
        """Beat until stopping (one last beat says so)."""
        conn: db.Conn | None = None
        while True:
            conn = self._beat(conn)
            self.now.wait(self._settings.service_heartbeat_s)
            self.now.clear()
            if self._stopping.is_set():
                break
        if conn is not None:
            conn.close()

    def _beat(self, conn: db.Conn | None) -> db.Conn | None:
        try:
            if conn is None or conn.closed:
                conn = db_connect.connect(
                    self._settings.database_url,
                    deadline_s=self._settings.db_deadline_s,
                    autocommit=True,
                )
            conn.execute(
                db.UPSERT_HEARTBEAT,
                db.beat_params(
                    service="ingest",
                    instance=self._settings.ingest_instance,
                    details=self._details(),
                ),
            )
        except psycopg.Error as exc:
            log.warning("heartbeat not written: %s", exc)
            if conn is not None:
                conn.close()
            return None
        return conn
