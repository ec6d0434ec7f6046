"""The ingest service: MQTT (paho, manual acks) → parse → batch → commit → PUBACK.

How acknowledgement after commit works (aiomqtt has no manual acks, so paho 2.x is used
directly): the client is made with `manual_ack=True`, so paho never sends PUBACK by itself.
paho's network thread parses each message and hands it to a lane (`ingest/lanes.py`): safety
alarms to the alarm lane, written at once, everything else to the bulk lane, written in batches.
Each lane's writer thread commits its batch (`ingest/writer.py`) and only then calls
`client.ack(mid, qos)` for each message. A crash before the ack leaves the messages in flight in
the broker's persistent session, which redelivers them; `event_id` makes the second write a
no-op.

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
from datetime import UTC, datetime
from typing import Any

import psycopg
from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.lanes import Lane, Message
from ingest.metrics import IngestMetrics
from ingest.parse import DeadLetter, Reason, parse
from ingest.store_psycopg import EventStore
from ingest.writer import Writer
from larmkedja import db, db_connect
from larmkedja.events import ReceivedEvent, dead_letter_notice
from larmkedja.mqtt_paho import connect_properties, make_client, on_connect
from larmkedja.settings import Settings

log = logging.getLogger(__name__)


EVENTS_FILTER = "larm/v1/+/+/events"


def subscription(share_group: str) -> str:
    """The events subscription: plain for one ingest process (the default), shared for
    several. Mosquitto 2.0 restores a plain subscription of a persistent session from its
    persistence file after a restart, but not a shared one: a shared group has no subscriber
    from the broker's start until its members re-subscribe, and events published then are
    answered PUBACK 0x10 "no matching subscribers" and dropped (docs/reliability.md)."""
    return f"$share/{share_group}/{EVENTS_FILTER}" if share_group else EVENTS_FILTER


class Ingest:
    def __init__(
        self,
        *,
        settings: Settings,
        store_factory: Callable[[], EventStore],
        metrics: IngestMetrics,
        client: Client | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._now = now
        self._v311 = settings.ingest_mqtt_protocol == "3.1.1"
        self._client = client or make_client(
            settings=settings,
            client_id=f"larmkedja-ingest-{settings.ingest_instance}",
            manual_ack=True,
            v311_persistent=self._v311,
        )
        self._client.on_connect = on_connect(who="ingest", connected=self._on_connect)
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._subscription = subscription(settings.ingest_share_group)
        self._stopping = threading.Event()
        self._bulk = Lane(
            name="bulk", batch_max=settings.ingest_batch_max, flush_s=settings.ingest_flush_s
        )
        self._alarms = Lane(name="alarm", batch_max=settings.ingest_batch_max, flush_s=0)
        self._writers = {
            lane.name: Writer(store=store_factory(), metrics=metrics, stopping=self._stopping)
            for lane in (self._bulk, self._alarms)
        }
        self._closed = False  # set once stopping: later messages are left for redelivery
        self._ack_lock = threading.Lock()
        self._generation = 0
        self._connected = False
        self._disconnected_since: datetime | None = now()
        self._subscribed = threading.Event()
        self._beat_now = threading.Event()  # report a state change without waiting
        self._last_commit: datetime | None = None

    @property
    def connected(self) -> bool:
        """Connected to the broker and subscribed."""
        return self._connected and self._subscribed.is_set()

    @property
    def metrics(self) -> IngestMetrics:
        return self._metrics

    # --- paho's network thread ---------------------------------------------------------

    def _on_connect(self, client: Client, flags: ConnectFlags) -> None:
        with self._ack_lock:
            self._generation += 1
            self._connected = True
            self._disconnected_since = None
        self._metrics.connected.set(1)
        self._subscribed.clear()
        if self._v311:
            client.subscribe(self._subscription, qos=1)
        else:
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
        lane = self._bulk
        if isinstance(item, ReceivedEvent) and item.event.kind.is_alarm:
            lane = self._alarms
        lane.offer(Message(self._generation, msg.mid, msg.qos, item))

    # --- writers ------------------------------------------------------------------------

    def run(self) -> None:
        """Connect and process until `stop()`; then flush, acknowledge and disconnect."""
        s = self._settings
        if self._v311:
            self._client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=s.mqtt_keepalive_s)
        else:
            self._client.connect_async(
                s.mqtt_host,
                s.mqtt_port,
                keepalive=s.mqtt_keepalive_s,
                clean_start=False,
                properties=connect_properties(
                    session_expiry_s=s.ingest_session_expiry_s,
                    receive_maximum=s.ingest_receive_maximum,
                ),
            )
        self._client.loop_start()
        threads = [
            threading.Thread(target=self._beat_forever, name="ingest-heartbeat", daemon=True),
            threading.Thread(target=self._lane_loop, args=(self._alarms,), name="ingest-alarms"),
        ]
        for thread in threads:
            thread.start()
        try:
            self._lane_loop(self._bulk)
        finally:
            threads[1].join(timeout=15)
            self._client.disconnect()
            self._client.loop_stop()
            threads[0].join(timeout=5)
            for writer in self._writers.values():
                writer.store.close()

    def stop(self, *, grace_s: float = 8.0) -> None:
        """Stop taking messages; `run` then commits what it holds (for at most `grace_s`)."""
        for writer in self._writers.values():
            writer.stop_deadline = time.monotonic() + grace_s
        self._stopping.set()
        self._beat_now.set()
        self._bulk.wake()
        self._alarms.wake()

    def _lane_loop(self, lane: Lane) -> None:
        writer = self._writers[lane.name]
        while not self._stopping.is_set():
            batch = lane.take(self._stopping)
            if batch:
                self._handle(lane, writer, batch)
        self._closed = True
        batch = lane.take(self._stopping, idle_s=0)  # what arrived before the stop
        if batch:
            self._handle(lane, writer, batch)

    def _handle(self, lane: Lane, writer: Writer, batch: list[Message]) -> None:
        try:
            self._metrics.buffered.set(len(batch))
            events = [m.item for m in batch if isinstance(m.item, ReceivedEvent)]
            dead = [m.item for m in batch if isinstance(m.item, DeadLetter)]
            started = time.perf_counter()
            outcome = writer.write(events, dead)
            if outcome is None:
                return  # gave up while stopping: nothing acknowledged, all redelivered later
            self._ack(batch)
            self._record(batch, events, *outcome, started=started)
        finally:
            lane.done()

    def _record(
        self,
        batch: list[Message],
        events: list[ReceivedEvent],
        stored: Counter[str],
        dead: list[DeadLetter],
        *,
        started: float,
    ) -> None:
        committed = self._now()
        m = self._metrics
        m.commit_seconds.observe(time.perf_counter() - started)
        m.batch_size.observe(len(batch))
        m.last_commit.set(committed.timestamp())
        m.count_kinds(m.received, Counter(e.event.kind.value for e in events))
        m.count_kinds(m.stored, stored)
        rejected = sum(1 for d in dead if d.reason is Reason.STORE_REJECTED)
        m.duplicates.inc(len(events) - sum(stored.values()) - rejected)
        m.count_kinds(m.dead_letters, Counter(d.reason.value for d in dead))
        if events:
            # The median device time of an even sample of the batch (backlog age, robust to a
            # few devices with wrong clocks).
            sample = events[:: max(1, len(events) // 51)]
            median_ts = statistics.median_low(e.event.ts for e in sample)
            m.lag.set(max(0.0, (committed - median_ts).total_seconds()))
        self._last_commit = committed
        for d in dead:
            self._publish_dead_letter(d)

    def _ack(self, batch: list[Message]) -> None:
        with self._ack_lock:
            generation = self._generation
            for m in batch:
                if m.qos and m.generation == generation:
                    self._client.ack(m.mid, m.qos)

    def _publish_dead_letter(self, dead: DeadLetter) -> None:
        topic, notice = dead_letter_notice(
            topic=dead.topic,
            site=dead.site,
            reason=dead.reason.value,
            detail=dead.detail,
            received_at=dead.received_at,
            head=dead.payload_head.decode("utf-8", "replace"),
        )
        self._client.publish(topic, notice, qos=1)

    # --- self-watch ---------------------------------------------------------------------

    def _details(self) -> dict[str, object]:
        lanes = [self._bulk.pending(), self._alarms.pending()]
        oldest = min((t for _, t in lanes if t is not None), default=None)
        age = (self._now() - oldest).total_seconds() if oldest else 0.0
        self._metrics.oldest_uncommitted.set(max(0.0, age))
        return {
            "mqtt_connected": self._connected,
            "disconnected_since": (
                self._disconnected_since.isoformat() if self._disconnected_since else None
            ),
            "last_commit_at": self._last_commit.isoformat() if self._last_commit else None,
            "pending": sum(n for n, _ in lanes),
            "oldest_pending_at": oldest.isoformat() if oldest else None,
        }

    def _beat_forever(self) -> None:
        """Say this instance is alive, from its own thread and connection, so a writer stuck
        on a slow database still shows as alive-but-not-committing (and the engine says so)."""
        conn: db.Conn | None = None
        while True:
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
                conn = None
            self._beat_now.wait(self._settings.service_heartbeat_s)
            self._beat_now.clear()
            if self._stopping.is_set():
                break
        if conn is not None:
            conn.close()
