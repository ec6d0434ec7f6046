"""The engine: the process that owns deadlines and publishes the outbox.

Every tick (LARM_ENGINE_TICK_S, and at once when the database notifies a change) it runs each
sweep in its own transaction, then publishes pending outbox rows. All state is in PostgreSQL, so
a restarted engine simply continues: what fell due while it was down fires at its first tick,
once. Any number of engines may run: one owns the deadlines (elected through PostgreSQL and
fenced by an epoch that every transaction of its sweeps and outbox checks first,
`leadership_psycopg.py`), the others stand by and take over when it dies or hangs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import psycopg
from paho.mqtt.client import Client

from alarms.runtime.leadership_psycopg import Deposed, Leadership
from alarms.runtime.metrics import EngineMetrics
from alarms.runtime.outbox_paho import OutboxPaths
from alarms.runtime.sweep import Sweep
from larmkedja import db, db_connect
from larmkedja.settings import Settings

log = logging.getLogger(__name__)

CHANNELS = ("larm_outbox", "larm_wake")


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        sweeps: Sequence[Sweep],
        client: Client,
        metrics: EngineMetrics,
        instance: str = "1",
        more_clients: Sequence[Client] = (),
    ) -> None:
        """`client` talks to the broker (or to the first of LARM_MQTT_PATHS), `more_clients`
        to the other paths, in order."""
        self._settings = settings
        self._sweeps = list(sweeps)
        self._metrics = metrics
        self._instance = instance
        self._outbox = OutboxPaths(clients=[client, *more_clients], metrics=metrics)
        self._leadership = Leadership(
            conninfo=settings.database_url,
            instance=instance,
            lease_s=settings.engine_lease_s,
            deadline_s=settings.db_deadline_s,
        )
        self._stopping = threading.Event()
        self._conn: db.Conn | None = None
        self._listen: db.Conn | None = None
        self._last_housekeeping = 0.0
        self._ticks = 0

    @property
    def ticks(self) -> int:
        return self._ticks

    @property
    def leading(self) -> bool:
        return self._leadership.leading

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        s = self._settings
        self._outbox.start(s.broker_paths(), keepalive_s=s.mqtt_keepalive_s)
        delay = 0.5
        try:
            while not self._stopping.is_set():
                try:
                    self._connect()
                    self.tick()
                    delay = 0.5
                    self._wait(s.engine_tick_s)
                except psycopg.Error as exc:
                    if not self._connection_lost(exc):
                        raise
                    log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                    self._close()
                    self._stopping.wait(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            self._close()
            self._outbox.stop()

    def _connection_lost(self, exc: psycopg.Error) -> bool:
        """The database is gone or ended this engine's session: reconnect, do not die. A
        session the server ended while this engine hung in a transaction (SIGSTOP while it
        waited for the broker's PUBACKs) is an `IdleInTransactionSessionTimeout`, which psycopg
        raises as an InternalError, not an OperationalError (tests/integration/
        test_engine_leadership.py)."""
        if isinstance(exc, psycopg.OperationalError):
            return True
        return any(conn is not None and conn.closed for conn in (self._conn, self._listen))

    def tick(self) -> None:
        """As the owner: run every sweep once, then publish what is pending. As a standby: try
        to become the owner. Both say they are alive."""
        conn = self._require()
        leading = self._leadership.hold()
        self._metrics.leader.set(1 if leading else 0)
        if leading:
            try:
                self._sweep(conn)
                self._publish(conn)
            except Deposed as exc:
                log.warning("%s", exc)
                self._leadership.step_down()
                self._metrics.leader.set(0)
        self._housekeeping(conn)
        self._ticks += 1
        self._metrics.last_tick.set(time.time())

    def _sweep(self, conn: db.Conn) -> None:
        for sweep in self._sweeps:
            started = time.perf_counter()
            try:
                with conn.transaction():
                    self._leadership.fence(conn)
                    fired = sweep.run(conn)
            except psycopg.Error as exc:
                if self._connection_lost(exc):
                    raise  # the run loop reconnects: no fault of this sweep
                log.exception("sweep %s failed; it runs again next tick", sweep.name)
                self._metrics.sweep_errors.labels(sweep.name).inc()
                continue
            self._metrics.sweep_seconds.labels(sweep.name).observe(time.perf_counter() - started)
            if fired:
                self._metrics.sweep_fired.labels(sweep.name).inc(fired)

    def _publish(self, conn: db.Conn) -> None:
        if self._outbox.connected:  # else the rows stay pending until a broker is back
            self._outbox.publish_pending(conn, fence=self._leadership.fence)

    def _housekeeping(self, conn: db.Conn) -> None:
        now = time.monotonic()
        if now - self._last_housekeeping < self._settings.service_heartbeat_s:
            return
        self._last_housekeeping = now
        if self._leadership.leading:
            self._outbox.housekeeping(conn)
        with conn.transaction():
            conn.execute(
                db.UPSERT_HEARTBEAT,
                db.beat_params(
                    service="engine",
                    instance=self._instance,
                    details={
                        "mqtt_connected": self._outbox.connected,
                        "leader": self._leadership.leading,
                        "epoch": self._leadership.epoch,
                    },
                ),
            )

    def _wait(self, timeout: float) -> None:
        """Sleep until the next tick, or until the database notifies a change."""
        listen = self._listen
        if listen is None:
            self._stopping.wait(timeout)
            return
        for _ in listen.notifies(timeout=timeout, stop_after=1):
            break

    def _connect(self) -> None:
        deadline_s = self._settings.db_deadline_s
        url = self._settings.database_url
        if self._conn is None or self._conn.closed:
            self._conn = db_connect.connect(url, deadline_s=deadline_s, autocommit=True)
            # A hung engine's open transaction (and the leadership row it holds FOR SHARE)
            # ends on the server, so the next owner is not kept waiting.
            lease_ms = max(1000, int(self._settings.engine_lease_s * 1000))
            self._conn.execute(f"SET idle_in_transaction_session_timeout = {lease_ms}".encode())
        if self._listen is None or self._listen.closed:
            self._listen = db_connect.connect(url, deadline_s=deadline_s, autocommit=True)
            for channel in CHANNELS:
                self._listen.execute(f"LISTEN {channel}".encode())

    def _require(self) -> db.Conn:
        self._connect()
        if self._conn is None:  # pragma: no cover - _connect sets it or raises
            raise psycopg.OperationalError("no connection")
        return self._conn

    def close(self) -> None:
        """Close the database connections (`run` does this itself when it ends)."""
        self._close()

    def _close(self) -> None:
        self._leadership.release()
        for conn in (self._conn, self._listen):
            if conn is not None and not conn.closed:
                conn.close()
        self._conn = None
        self._listen = None
