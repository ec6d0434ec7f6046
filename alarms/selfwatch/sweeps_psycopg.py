"""The engine's watch over the system itself: `system.silent` (a receiver fault once went
unnoticed for 17 hours)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from psycopg.types.json import Jsonb

from alarms.selfwatch import silence_psycopg as q
from larmkedja.db import Conn
from larmkedja.events import AlertKind
from larmkedja.metrics import gauge
from larmkedja.settings import Settings


class SilenceSweep:
    """`system.silent` while no device event arrives, no ingest runs, or writes stall."""

    name = "system_silent"
    kind = AlertKind.SYSTEM_SILENT.value
    site = "_system"  # not a valid site name, so it never collides with one

    def __init__(self, *, settings: Settings, registry: CollectorRegistry) -> None:
        self._settings = settings
        self._silent = gauge(
            registry,
            "larm_system_silent",
            "1 while the system is silent (no ingest, stalled commits, or no device events).",
        )

    def run(self, conn: Conn) -> int:
        rows = conn.execute(q.SILENCE, q.params(self._settings)).fetchall()
        reasons = q.reasons(self._settings, rows)
        self._silent.set(1 if reasons else 0)
        details = Jsonb({"reasons": reasons})
        if reasons:
            row = conn.execute(
                "SELECT larm_raise_alert(%s, %s, 'critical', 'larmkedja', %s)",
                (self.site, self.kind, details),
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT larm_resolve_alert(%s, 'larmkedja', %s)", (self.kind, details)
            ).fetchone()
        return 1 if row and row[0] else 0
