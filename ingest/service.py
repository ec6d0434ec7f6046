"""The ingest service: MQTT (paho, manual acks) → parse → batch → commit → PUBACK.

How acknowledgement after commit works (aiomqtt has no manual acks, so paho 2.x is used
directly): the client is made with `manual_ack=True`, so paho never sends PUBACK by itself.
paho's network thread parses each message into the buffer; this thread takes a batch when it
reaches `ingest_batch_max` messages or `ingest_flush_s` after its first message (at once for
an alarm), writes and commits it, and only then calls `client.ack(mid, qos)` for each message.
A crash before the ack leaves the messages in flight in the broker's persistent session, which
redelivers them; `event_id` makes the second write a no-op.

Packet ids are only meaningful on the connection that received them. Every message carries the
connection generation it arrived on; a disconnect bumps the generation (under the same lock the
acks are sent under), so a batch committed after a reconnect is not acknowledged with stale
ids: the broker redelivers those messages, and the redelivered copies are acknowledged.

Memory is bounded by the MQTT receive maximum: the broker never has more than that many
unacknowledged messages out to us, and holds the rest.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.metrics import IngestMetrics
from ingest.parse import DeadLetter, Reason, parse
from ingest.store_psycopg import EventStore
from larmkedja import db
from larmkedja.events import ReceivedEvent
from larmkedja.mqtt_paho import connect_properties, make_client
from larmkedja.settings import Settings

log = logging.getLogger(__name__)

# SQLSTATE classes that point at one bad row rather than at the database: data exception,
# integrity constraint violation, program limit exceeded.
_DATA_ERROR_CLASSES = ("22", "23", "54")


@dataclass(slots=True)
class _Message:
    generation: int
    mid: int
    qos: int
    item: ReceivedEvent | DeadLetter


class Ingest:
    def __init__(
        self,
        *,
        settings: Settings,
        store: EventStore,
        metrics: IngestMetrics,
        client: Client | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._store = store
        self._metrics = metrics
        self._now = now
        self._client = client or make_client(
            settings=settings,
            client_id=f"larmkedja-ingest-{settings.ingest_instance}",
            manual_ack=True,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._subscription = f"$share/{settings.ingest_share_group}/larm/v1/+/+/events"
        self._cond = threading.Condition()
        self._buffer: list[_Message] = []
        self._first_at = 0.0
        self._urgent = False
        self._stopping = threading.Event()
        self._closed = False  # set once stopping: later messages are left for redelivery
        self._ack_lock = threading.Lock()
        self._generation = 0
        self._connected = False
        self._disconnected_since: datetime | None = now()
        self._subscribed = threading.Event()
        self._beat_now = threading.Event()  # report a state change without waiting
        self._last_commit: datetime | None = None
        self._pending = 0  # messages in the batch being written
        self._writing_since: datetime | None = None  # receive time of that batch's first
        self._stop_deadline = 0.0

    @property
    def connected(self) -> bool:
        """Connected to the broker and subscribed."""
        return self._connected and self._subscribed.is_set()

    @property
    def metrics(self) -> IngestMetrics:
        return self._metrics

    # --- paho's network thread ---------------------------------------------------------

    def _on_connect(
        self,
        client: Client,
        userdata: Any,
        flags: ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        with self._ack_lock:
            self._generation += 1
            self._connected = True
            self._disconnected_since = None
        self._metrics.connected.set(1)
        self._subscribed.clear()
        client.subscribe(self._subscription, options=SubscribeOptions(qos=1))
        log.info("connected (session present: %s), subscribed", flags.session_present)

    def _on_subscribe(
        self,
        client: Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error("subscription refused: %s", reasons)
            return
        self._subscribed.set()
        self._beat_now.set()

    def _on_disconnect(
        self,
        client: Client,
        userdata: Any,
        flags: DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._ack_lock:
            self._generation += 1
            self._connected = False
            self._disconnected_since = self._disconnected_since or self._now()
        self._metrics.connected.set(0)
        self._beat_now.set()
        if not self._stopping.is_set():
            log.warning("disconnected from the broker: %s; reconnecting", reason)

    def _on_message(self, client: Client, userdata: Any, msg: MQTTMessage) -> None:
        if self._closed:
            return  # not acknowledged: the broker redelivers it to the next session
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", "replace")
        item = parse(topic=topic, payload=bytes(msg.payload), received_at=self._now())
        urgent = isinstance(item, ReceivedEvent) and item.event.kind.is_alarm
        with self._cond:
            if not self._buffer:
                self._first_at = time.monotonic()
            self._buffer.append(_Message(self._generation, msg.mid, msg.qos, item))
            if urgent:
                self._urgent = True
            if urgent or len(self._buffer) >= self._settings.ingest_batch_max:
                self._cond.notify()

    # --- the writer (caller's thread) --------------------------------------------------

    def run(self) -> None:
        """Connect and process until `stop()`; then flush, acknowledge and disconnect."""
        s = self._settings
        self._client.connect_async(
            s.mqtt_host,
            s.mqtt_port,
            keepalive=30,
            clean_start=False,
            properties=connect_properties(
                session_expiry_s=s.ingest_session_expiry_s,
                receive_maximum=s.ingest_receive_maximum,
            ),
        )
        self._client.loop_start()
        beat = threading.Thread(target=self._beat_forever, name="ingest-heartbeat", daemon=True)
        beat.start()
        try:
            while not self._stopping.is_set():
                batch = self._take_batch()
                if batch:
                    self._handle(batch)
            self._drain()
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            beat.join(timeout=5)
            self._store.close()

    def stop(self, *, grace_s: float = 8.0) -> None:
        """Stop taking messages; `run` then commits what it holds (for at most `grace_s`)."""
        self._stop_deadline = time.monotonic() + grace_s
        self._stopping.set()
        self._beat_now.set()
        with self._cond:
            self._cond.notify()

    def _drain(self) -> None:
        self._closed = True
        with self._cond:
            batch, self._buffer = self._buffer, []
        if batch:
            self._handle(batch)

    def _take_batch(self) -> list[_Message]:
        s = self._settings
        with self._cond:
            if not self._buffer:
                self._cond.wait(timeout=min(0.5, s.service_heartbeat_s))
            while self._buffer and not self._stopping.is_set():
                due = self._first_at + s.ingest_flush_s - time.monotonic()
                if self._urgent or len(self._buffer) >= s.ingest_batch_max or due <= 0:
                    break
                self._cond.wait(timeout=due)
            batch, self._buffer = self._buffer, []
            self._urgent = False
        self._metrics.buffered.set(len(batch))
        return batch

    def _handle(self, batch: list[_Message]) -> None:
        self._pending = len(batch)
        self._writing_since = batch[0].item.received_at if batch else None
        try:
            self._handle_batch(batch)
        finally:
            self._pending = 0
            self._writing_since = None

    def _handle_batch(self, batch: list[_Message]) -> None:
        events = [m.item for m in batch if isinstance(m.item, ReceivedEvent)]
        dead = [m.item for m in batch if isinstance(m.item, DeadLetter)]
        started = time.perf_counter()
        outcome = self._write(events, dead)
        if outcome is None:
            return  # gave up while stopping: nothing acknowledged, all redelivered later
        new, dead = outcome
        self._ack(batch)
        committed = self._now()
        m = self._metrics
        m.commit_seconds.observe(time.perf_counter() - started)
        m.batch_size.observe(len(batch))
        m.last_commit.set(committed.timestamp())
        m.count_kinds(m.received, Counter(e.event.kind.value for e in events))
        m.count_kinds(m.stored, Counter(e.event.kind.value for e in new))
        rejected = sum(1 for d in dead if d.reason is Reason.STORE_REJECTED)
        m.duplicates.inc(len(events) - len(new) - rejected)
        m.count_kinds(m.dead_letters, Counter(d.reason.value for d in dead))
        if events:
            median_ts = statistics.median_low(e.event.ts for e in events)
            m.lag.set(max(0.0, (committed - median_ts).total_seconds()))
        self._last_commit = committed
        for d in dead:
            self._publish_dead_letter(d)

    def _write(
        self, events: list[ReceivedEvent], dead: list[DeadLetter]
    ) -> tuple[list[ReceivedEvent], list[DeadLetter]] | None:
        """Commit the batch, retrying until it is stored; None only if a stop ran out of time."""
        delay = 0.2
        while True:
            try:
                return self._store.write(events, dead).new, dead
            except psycopg.Error as exc:
                self._metrics.db_errors.labels(type(exc).__name__).inc()
                if (exc.sqlstate or "")[:2] in _DATA_ERROR_CLASSES and events:
                    kept, rejected = self._set_aside_unstorable(events, exc)
                    if rejected:
                        events, dead = kept, dead + rejected
                        continue
                log.warning(
                    "batch not stored (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay
                )
                if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
                    self._store.close()
            if not self._backoff(delay):
                return None
            delay = min(delay * 2, 5.0)

    def _backoff(self, delay: float) -> bool:
        """Wait before a retry; False once a stop has no time left for another one."""
        if not self._stopping.is_set():
            self._stopping.wait(delay)
            return True
        remaining = self._stop_deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        return True

    def _set_aside_unstorable(
        self, events: list[ReceivedEvent], exc: psycopg.Error
    ) -> tuple[list[ReceivedEvent], list[DeadLetter]]:
        """Split off the events the database refuses one by one (none: the fault is elsewhere)."""
        try:
            bad = set(self._store.find_unstorable(events))
        except psycopg.Error:
            return events, []
        rejected = [
            DeadLetter(
                topic=r.event.topic(r.site),
                site=r.site,
                reason=Reason.STORE_REJECTED,
                detail=f"the database refused it: {exc.sqlstate} {type(exc).__name__}",
                received_at=r.received_at,
                payload_head=r.event.to_json()[:256],
            )
            for i, r in enumerate(events)
            if i in bad
        ]
        if rejected:
            log.error("%d event(s) refused by the database, kept as dead letters", len(rejected))
        return [r for i, r in enumerate(events) if i not in bad], rejected

    def _ack(self, batch: list[_Message]) -> None:
        with self._ack_lock:
            generation = self._generation
            for m in batch:
                if m.qos and m.generation == generation:
                    self._client.ack(m.mid, m.qos)

    def _publish_dead_letter(self, dead: DeadLetter) -> None:
        notice = {
            "topic": dead.topic,
            "reason": dead.reason.value,
            "detail": dead.detail,
            "received_at": dead.received_at.isoformat(),
            "payload_head": dead.payload_head.decode("utf-8", "replace"),
        }
        self._client.publish(
            f"larm/v1/{dead.site or '_invalid'}/deadletter", orjson.dumps(notice), qos=1
        )

    def _oldest_pending_at(self) -> str | None:
        """Receive time of the oldest message not yet committed (None: nothing waits)."""
        batch_start = self._writing_since
        with self._cond:
            first = self._buffer[0].item.received_at if self._buffer else None
        oldest = min((t for t in (batch_start, first) if t is not None), default=None)
        return oldest.isoformat() if oldest else None

    def _beat_forever(self) -> None:
        """Say this instance is alive, from its own thread and connection, so a writer stuck
        on a slow database still shows as alive-but-not-committing (and the engine says so)."""
        conn: db.Conn | None = None
        while True:
            details: dict[str, object] = {
                "mqtt_connected": self._connected,
                "disconnected_since": (
                    self._disconnected_since.isoformat() if self._disconnected_since else None
                ),
                "last_commit_at": self._last_commit.isoformat() if self._last_commit else None,
                "pending": self._pending + len(self._buffer),
                "oldest_pending_at": self._oldest_pending_at(),
            }
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(
                        self._settings.database_url, autocommit=True, connect_timeout=5
                    )
                conn.execute(
                    db.UPSERT_HEARTBEAT,
                    db.beat_params(
                        service="ingest", instance=self._settings.ingest_instance, details=details
                    ),
                )
            except psycopg.Error as exc:
                log.warning("heartbeat not written: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None
            self._beat_now.wait(self._settings.service_heartbeat_s)
            self._beat_now.clear()
            if self._stopping.is_set():
                break
        if conn is not None:
            conn.close()
