"""The engine: the process that owns deadlines and publishes the outbox.

Every tick (LARM_ENGINE_TICK_S, and at once when the database notifies a change) it runs each
sweep in its own transaction, then publishes pending outbox rows. All state is in PostgreSQL, so
any number of engines may run and a restarted one simply continues: what fell due while it was
down fires at its first tick, once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import psycopg
from paho.mqtt.client import Client

from alarms.runtime.metrics import EngineMetrics
from alarms.runtime.outbox_paho import OutboxPublisher, PublishError
from alarms.runtime.sweep import Sweep
from larmkedja import db, db_connect
from larmkedja.mqtt_paho import on_connect
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
    ) -> None:
        self._settings = settings
        self._sweeps = list(sweeps)
        self._client = client
        self._metrics = metrics
        self._instance = instance
        self._publisher = OutboxPublisher(client=client, metrics=metrics)
        self._stopping = threading.Event()
        self._mqtt_up = threading.Event()
        self._conn: db.Conn | None = None
        self._listen: db.Conn | None = None
        self._last_housekeeping = 0.0
        self._ticks = 0
        client.on_connect = on_connect(who="engine", connected=lambda c, f: self._mqtt_up.set())
        client.on_disconnect = lambda *a: self._mqtt_up.clear()

    @property
    def ticks(self) -> int:
        return self._ticks

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        s = self._settings
        self._client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=30)
        self._client.loop_start()
        delay = 0.5
        try:
            while not self._stopping.is_set():
                try:
                    self._connect()
                    self.tick()
                    delay = 0.5
                    self._wait(s.engine_tick_s)
                except psycopg.OperationalError as exc:
                    log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                    self._close()
                    self._stopping.wait(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            self._close()
            self._client.disconnect()
            self._client.loop_stop()

    def tick(self) -> None:
        """Run every sweep once, then publish what is pending."""
        conn = self._require()
        for sweep in self._sweeps:
            started = time.perf_counter()
            try:
                with conn.transaction():
                    fired = sweep.run(conn)
            except psycopg.OperationalError:
                raise
            except psycopg.Error:
                log.exception("sweep %s failed; it runs again next tick", sweep.name)
                self._metrics.sweep_errors.labels(sweep.name).inc()
                continue
            self._metrics.sweep_seconds.labels(sweep.name).observe(time.perf_counter() - started)
            if fired:
                self._metrics.sweep_fired.labels(sweep.name).inc(fired)
        self._publish(conn)
        self._housekeeping(conn)
        self._ticks += 1
        self._metrics.last_tick.set(time.time())

    def _publish(self, conn: db.Conn) -> None:
        if not self._mqtt_up.is_set():
            return  # the rows stay pending until the broker is back
        try:
            while self._publisher.publish_pending(conn):
                pass
        except PublishError as exc:
            log.warning("outbox not published yet: %s", exc)

    def _housekeeping(self, conn: db.Conn) -> None:
        now = time.monotonic()
        if now - self._last_housekeeping < self._settings.service_heartbeat_s:
            return
        self._last_housekeeping = now
        self._publisher.housekeeping(conn)
        with conn.transaction():
            conn.execute(
                db.UPSERT_HEARTBEAT,
                db.beat_params(
                    service="engine",
                    instance=self._instance,
                    details={"mqtt_connected": self._mqtt_up.is_set()},
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
        for conn in (self._conn, self._listen):
            if conn is not None and not conn.closed:
                conn.close()
        self._conn = None
        self._listen = None
