"""The ingest service: MQTT (paho, manual acks) → parse → batch → commit → PUBACK.

How acknowledgement after commit works (aiomqtt has no manual acks, so paho 2.x is used
directly): the client is made with `manual_ack=True`, so paho never sends PUBACK by itself.
paho's network thread reads and frames (`larmkedja.mqtt_fast_paho`) and routes each message to
a lane (`ingest/routing.py`, `ingest/lanes.py`): safety alarms, parsed at once, to the alarm
lane, written on their own; everything else, unparsed, to its device's bulk lane. Each lane's
writer thread parses and commits its batch (`ingest/writer.py`) and only then acknowledges its
messages, in the order they were read (`ingest/acks.py`: the committed prefix of that order).
A crash before the ack leaves the messages in flight in the broker's persistent session, which
redelivers them; `event_id` makes the second write a no-op.

Packet ids are only meaningful on the connection that received them. Every message carries the
connection generation it arrived on; a disconnect bumps the generation (under the same lock the
acks are sent under), so a batch committed after a reconnect is not acknowledged with stale
ids: the broker redelivers those messages, and the redelivered copies are acknowledged.

Memory is bounded by the receive maximum: while ingest holds that many messages not yet
committed, it does not read its socket, and the broker holds the rest (Mosquitto 2.0 sends a
session's backlog without regard to the MQTT receive maximum). With `LARM_INGEST_PARTITIONS`,
each process stores only its partition of the devices and acknowledges the rest at once.
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

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.acks import ReceiveOrder
from ingest.beat_psycopg import Beat
from ingest.lanes import Lane, Message
from ingest.metrics import IngestMetrics
from ingest.parse import DeadLetter, Reason, parse, surely_storable
from ingest.routing import looks_like_alarm, may_hold_alarm, owner, partition
from ingest.store_psycopg import EventStore
from ingest.writer import Writer
from larmkedja.events import ReceivedEvent
from larmkedja.mqtt_fast_paho import FastConsumer
from larmkedja.mqtt_paho import connect_properties, make_client, on_connect
from larmkedja.mqtt_wire import Publish
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


def _topic(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # kept as a dead letter with the topic as it came
        return raw.decode("utf-8", "replace")


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
            cls=FastConsumer,
        )
        if isinstance(self._client, FastConsumer):
            self._client.on_publishes = self._on_publishes
            self._client.full = self._full
        self._client.on_connect = on_connect(who="ingest", connected=self._on_connect)
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._subscription = subscription(settings.ingest_share_group)
        self._stopping = threading.Event()
        self._bulk = [
            Lane(
                name=f"bulk-{i}",
                batch_max=settings.ingest_batch_max,
                flush_s=settings.ingest_flush_s,
            )
            for i in range(settings.ingest_writers)
        ]
        self._alarms = Lane(name="alarm", batch_max=settings.ingest_batch_max, flush_s=0)
        self._lanes = [self._alarms, *self._bulk]
        self._writers = {
            lane.name: Writer(store=store_factory(), metrics=metrics, stopping=self._stopping)
            for lane in self._lanes
        }
        self._closed = False  # set once stopping: later messages are left for redelivery
        # Held while a read is routed: once `_closed` is set and this taken, no lane is offered
        # more, so the lanes' last drain leaves nothing noted and never committed (which would
        # hold back the acknowledgement of every message read after it).
        self._reading = threading.Lock()
        # Messages received and not yet committed (or given up): at most the receive maximum.
        self._held = 0
        self._held_lock = threading.Lock()
        self._ack_lock = threading.Lock()
        self._order = ReceiveOrder()  # under `_ack_lock`, but for `note` (paho's thread)
        self._generation = 0
        self._connected = False
        self._disconnected_since: datetime | None = now()
        self._subscribed = threading.Event()
        self._beat = Beat(settings=settings, details=self._details, stopping=self._stopping)
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
            self._order.forget()
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
        self._beat.now.set()

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
            self._order.forget()
            self._connected = False
            self._disconnected_since = self._disconnected_since or self._now()
        self._metrics.connected.set(0)
        self._beat.now.set()
        if not self._stopping.is_set():
            log.warning("disconnected from the broker: %s; reconnecting", reason)

    def _on_message(self, client: Client, userdata: Any, msg: MQTTMessage) -> None:
        """A message paho decoded itself (QoS 0, or a client other than `FastConsumer`)."""
        self._on_publishes([Publish(msg._topic, bytes(msg.payload), msg.mid, msg.qos)])

    def _on_publishes(self, publishes: list[Publish]) -> None:
        """One read of the socket, into the lanes; none once stopping has closed them."""
        with self._reading:
            if self._closed:
                return  # not acknowledged: the broker redelivers it to the next session
            self._route(publishes)

    def _route(self, publishes: list[Publish]) -> None:
        """Into the lanes (`ingest/routing.py`): what looks like a safety alarm is parsed now
        and, if it is one, goes to the alarm lane; the rest goes unparsed to its device's bulk
        lane. Each is noted in the receiving order first (`ingest/acks.py`). Whether any may be
        an alarm, or hold what the store refuses (`parse`'s scan), is told once per read."""
        now, generation, lanes = self._now(), self._generation, len(self._bulk)
        partitions, mine = self._settings.ingest_partitions, self._settings.ingest_partition
        shares: list[list[Message]] = [[] for _ in range(lanes)]  # bulk-0, bulk-1, ...
        others = False  # another partition's: its owner has its own copy
        note = self._order.note
        read = b"".join([publish[1] for publish in publishes])
        storable, alarms = surely_storable(read), may_hold_alarm(read)
        for topic, payload, mid, qos in publishes:
            if partitions > 1 and owner(topic, partitions) != mine:
                note(Message(generation, mid, qos, now, topic, b"", done=True))
                others = True
                continue
            message = Message(generation, mid, qos, now, topic, payload, storable=storable)
            note(message)  # before a lane can commit it
            if alarms and looks_like_alarm(payload):
                message.item = parse(topic=_topic(topic), payload=payload, received_at=now)
                if isinstance(message.item, ReceivedEvent) and message.item.event.kind.is_alarm:
                    with self._held_lock:
                        self._held += 1
                    self._alarms.offer([message])  # at once, not after the rest of the read
                    continue
            shares[partition(topic, lanes, partitions=partitions)].append(message)
        if others:
            self._acknowledge_done()
        with self._held_lock:
            self._held += sum(len(share) for share in shares)
        for lane, share in zip(self._bulk, shares, strict=True):
            if share:
                lane.offer(share)

    def _full(self) -> bool:
        return self._held >= self._settings.ingest_receive_maximum

    def _released(self, count: int) -> None:
        with self._held_lock:
            self._held -= count
        if isinstance(self._client, FastConsumer) and not self._full():
            self._client.room.set()

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
        beat = threading.Thread(target=self._beat.forever, name="ingest-heartbeat", daemon=True)
        writers = [
            threading.Thread(target=self._lane_loop, args=(lane,), name=f"ingest-{lane.name}")
            for lane in self._lanes[1:]
        ]
        for thread in (beat, *writers):
            thread.start()
        try:
            self._lane_loop(self._alarms)
        finally:
            for thread in writers:
                thread.join(timeout=15)
            self._client.disconnect()
            self._client.loop_stop()
            beat.join(timeout=5)
            for writer in self._writers.values():
                writer.store.close()

    def stop(self, *, grace_s: float = 8.0) -> None:
        """Stop taking messages; `run` then commits what it holds (for at most `grace_s`)."""
        for writer in self._writers.values():
            writer.stop_deadline = time.monotonic() + grace_s
        self._stopping.set()
        self._beat.now.set()
        for lane in self._lanes:
            lane.wake()

    def _lane_loop(self, lane: Lane) -> None:
        writer = self._writers[lane.name]
        while not self._stopping.is_set():
            batch = lane.take(self._stopping)
            if batch:
                self._handle(lane, writer, batch)
        self._closed = True
        with self._reading:
            pass  # a read still being routed has finished: nothing more comes to the lanes
        while batch := lane.take(self._stopping, idle_s=0):  # what arrived before the stop
            if not self._handle(lane, writer, batch):
                break  # the stop ran out of time: the rest is redelivered

    def _handle(self, lane: Lane, writer: Writer, batch: list[Message]) -> bool:
        """Parse what is not parsed yet, commit, acknowledge; False if a stop gave up."""
        try:
            self._metrics.buffered.set(len(batch))
            events: list[ReceivedEvent] = []
            dead: list[DeadLetter] = []
            for m in batch:
                item = m.item or parse(
                    topic=_topic(m.topic), payload=m.payload, received_at=m.received_at,
                    checked_storable=m.storable,
                )  # fmt: skip
                if isinstance(item, ReceivedEvent):
                    events.append(item)
                else:
                    dead.append(item)
            started = time.perf_counter()
            outcome = writer.write(events, dead)
            if outcome is None:
                return False  # gave up while stopping: nothing acknowledged, all redelivered
            for m in batch:  # kept by the receiving order until acknowledged: drop the bytes
                m.done, m.payload, m.item = True, b"", None
            self._acknowledge_done()
            self._record(batch, events, *outcome, started=started)
            return True
        finally:
            lane.done()
            self._released(len(batch))

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
        m.count_kinds(m.received, Counter([e.event.kind for e in events]))
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

    def _acknowledge_done(self) -> None:
        """PUBACK the committed prefix of the receiving order (`ingest/acks.py`), on the
        current connection only (a disconnect forgets the order under the same lock)."""
        with self._ack_lock:
            mids = self._order.release(self._generation)
            if not mids:
                return
            if isinstance(self._client, FastConsumer):
                self._client.ack_many(mids)
            else:
                for mid in mids:
                    self._client.ack(mid, 1)

    def _publish_dead_letter(self, dead: DeadLetter) -> None:
        topic, notice = dead.notice(encoding="utf-8")
        self._client.publish(topic, notice, qos=1)

    # --- self-watch ---------------------------------------------------------------------

    def _details(self) -> dict[str, object]:
        lanes = [lane.pending() for lane in self._lanes]
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
            "partition": f"{self._settings.ingest_partition}/{self._settings.ingest_partitions}",
            "oldest_pending_at": oldest.isoformat() if oldest else None,
        }
