"""Publish the outbox (alerts, escalations) at QoS 1; mark rows only after the broker's PUBACK.

At least once: a crash between PUBACK and the mark publishes the row again; subscribers tell
repeats by `alert_id` / `escalation_id`. Only the engine that owns the deadlines publishes
(`fence`), and the rows are taken with `SKIP LOCKED`.

With two receiving paths (two brokers that share nothing, docs/scaling.md) `OutboxPaths` keeps a
client on each and publishes on the first that is connected, so a lost broker delays nothing;
subscribers subscribe on every path and tell repeats by their ids as above.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import orjson
from paho.mqtt.client import Client

from alarms.runtime.metrics import EngineMetrics
from larmkedja.db import Conn
from larmkedja.mqtt_paho import on_connect

log = logging.getLogger(__name__)

TAKE_PENDING = """
SELECT id, topic, payload FROM outbox
WHERE published_at IS NULL
ORDER BY id
LIMIT %s
FOR UPDATE SKIP LOCKED
"""
MARK_PUBLISHED = "UPDATE outbox SET published_at = now() WHERE id = ANY(%s)"
COUNT_PENDING = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
PRUNE_PUBLISHED = "DELETE FROM outbox WHERE published_at < now() - interval '1 day'"


class PublishError(RuntimeError):
    """The broker did not acknowledge a publish in time (the rows stay pending)."""


class OutboxPublisher:
    def __init__(self, *, client: Client, metrics: EngineMetrics, batch: int = 500) -> None:
        self._client = client
        self._metrics = metrics
        self._batch = batch

    def publish_pending(self, conn: Conn, *, fence: Callable[[Conn], None]) -> int:
        """Publish one batch; returns how many were published (0: nothing pending). `fence`
        raises if this engine no longer owns the outbox (in the transaction, before anything)."""
        with conn.transaction():
            fence(conn)
            rows = conn.execute(TAKE_PENDING, (self._batch,)).fetchall()
            if not rows:
                return 0
            infos = [
                self._client.publish(str(topic), orjson.dumps(payload), qos=1)
                for _, topic, payload in rows
            ]
            for info in infos:
                try:
                    info.wait_for_publish(timeout=5.0)
                except (RuntimeError, ValueError) as exc:
                    raise PublishError(f"outbox message not published: {exc}") from exc
                if not info.is_published():
                    raise PublishError("the broker did not acknowledge an outbox message")
            conn.execute(MARK_PUBLISHED, ([row[0] for row in rows],))
        for _, topic, payload in rows:
            self._count(str(topic), payload)
        return len(rows)

    def _count(self, topic: str, payload: object) -> None:
        topic_kind = topic.rsplit("/", 1)[-1]
        self._metrics.published.labels(topic_kind).inc()
        if topic_kind == "alerts" and isinstance(payload, dict):
            self._metrics.alerts.labels(str(payload.get("kind")), str(payload.get("state"))).inc()

    def housekeeping(self, conn: Conn) -> None:
        with conn.transaction():
            row = conn.execute(COUNT_PENDING).fetchone()
            conn.execute(PRUNE_PUBLISHED)
        self._metrics.outbox_pending.set(int(row[0]) if row else 0)


class _Path:
    def __init__(self, client: Client, metrics: EngineMetrics) -> None:
        self.client = client
        self.publisher = OutboxPublisher(client=client, metrics=metrics)
        self.up = threading.Event()
        # After a publish went unacknowledged the path rests until this (monotonic) time or
        # its next connect: a silent broker (a partition, before the keepalive notices) would
        # otherwise hold every tick of the engine for the publish timeout.
        self.resting_until = 0.0
        client.on_connect = on_connect(who="engine", connected=self._connected)
        client.on_disconnect = lambda *a: self.up.clear()

    def _connected(self, client: Client, flags: object) -> None:
        self.resting_until = 0.0
        self.up.set()

    def usable(self, now: float) -> bool:
        return self.up.is_set() and now >= self.resting_until


class OutboxPaths:
    """The outbox's way out: a client per receiving path, the first connected one used."""

    def __init__(self, *, clients: Sequence[Client], metrics: EngineMetrics) -> None:
        self._paths = [_Path(client, metrics) for client in clients]
        self._rest_s = 30.0

    @property
    def connected(self) -> bool:
        return any(p.up.is_set() for p in self._paths)

    def start(self, brokers: Sequence[tuple[str, int]], *, keepalive_s: int) -> None:
        self._rest_s = float(keepalive_s)  # by then paho has noticed a silent broker
        for path, (host, port) in zip(self._paths, brokers, strict=False):
            path.client.connect_async(host, port, keepalive=keepalive_s)
            path.client.loop_start()

    def stop(self) -> None:
        for path in self._paths:
            path.client.disconnect()
            path.client.loop_stop()

    def publish_pending(self, conn: Conn, *, fence: Callable[[Conn], None]) -> None:
        """Publish everything pending on the first connected path that takes it; what no path
        took stays pending for the next tick. A path that left a publish unacknowledged rests
        for a keepalive (or until it connects again), so the next tick goes straight to the
        other path, or, with one path, the engine's ticks are not each held for the timeout."""
        for path in self._paths:
            if not path.usable(time.monotonic()):
                continue
            try:
                while path.publisher.publish_pending(conn, fence=fence):
                    pass
                return
            except PublishError as exc:
                path.resting_until = time.monotonic() + self._rest_s
                log.warning(
                    "outbox not published on this path (it rests %.0f s): %s", self._rest_s, exc
                )

    def housekeeping(self, conn: Conn) -> None:
        self._paths[0].publisher.housekeeping(conn)
