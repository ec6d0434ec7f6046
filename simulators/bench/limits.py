"""Part 1 of the benchmark: what this machine can do at all, measured in the same run.

Every consumer drains the same backlog: the events are published once, while every consumer's
persistent session is subscribed and offline, so the broker queues a copy for each
(`max_queued_messages 0`). A drain then measures only the consumer and the broker, never the
load generator."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import psycopg
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.subscribeoptions import SubscribeOptions
from psycopg.types.json import set_json_dumps

from devstack.procs import installed
from larmkedja.mqtt_fast_paho import FastConsumer
from larmkedja.mqtt_paho import bare_client, connect_properties
from larmkedja.mqtt_wire import Publish

TOPIC = "larm/v1/+/+/events"


@dataclass(frozen=True, slots=True)
class Drain:
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def _connect(client: Client, host: str, port: int, *, v311: bool) -> None:
    if v311:
        client.connect(host, port)
    else:
        client.connect(
            host,
            port,
            clean_start=False,
            properties=connect_properties(session_expiry_s=86_400, receive_maximum=20_000),
        )


def make_session(
    host: str, port: int, client_id: str, topic_filter: str, *, v311: bool = False
) -> None:
    """A persistent session subscribed to `topic_filter`, left offline (it queues a backlog)."""
    done = threading.Event()
    client = bare_client(client_id=client_id, v311_persistent=v311)
    client.on_subscribe = lambda *a: done.set()
    _connect(client, host, port, v311=v311)
    client.loop_start()
    if v311:
        client.subscribe(topic_filter, qos=1)  # SubscribeOptions are MQTT v5 only
    else:
        client.subscribe(topic_filter, options=SubscribeOptions(qos=1))
    if not done.wait(10):
        raise RuntimeError(f"subscription of {client_id} not acknowledged")
    client.disconnect()
    client.loop_stop()


def c_client_session(host: str, port: int, client_id: str) -> None:
    """The same for Mosquitto's own C client (MQTT 3.1.1, clean session off)."""
    exe = installed("mosquitto_sub")
    subprocess.run(  # noqa: S603 - mosquitto_sub with our own arguments
        [exe, "-h", host, "-p", str(port), "-c", "-i", client_id, "-q", "1", "-t", TOPIC, "-E"],
        check=True,
        timeout=10,
        capture_output=True,
    )


def drain_c_client(host: str, port: int, client_id: str, expected: int) -> Drain:
    """mosquitto_sub (C) drains the backlog of its session; output discarded."""
    exe = installed("mosquitto_sub")
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - mosquitto_sub with our own arguments
        [
            exe,
            "-h",
            host,
            "-p",
            str(port),
            "-c",
            "-i",
            client_id,
            "-q",
            "1",
            "-t",
            TOPIC,
            "-C",
            str(expected),
        ],
        check=True,
        timeout=600,
        stdout=subprocess.DEVNULL,
    )
    return Drain(expected, time.perf_counter() - started)


class _Count:
    """Messages counted by a bench consumer's callback until `expected` are in."""

    def __init__(self, *, expected: int) -> None:
        self.expected = expected
        self.received = 0
        self.done = threading.Event()

    def add(self, n: int) -> None:
        self.received += n
        if self.received >= self.expected:
            self.done.set()


def _timed_drain(client: Client, host: str, port: int, count: _Count, *, v311: bool) -> Drain:
    started = time.perf_counter()
    _connect(client, host, port, v311=v311)
    client.loop_start()
    finished = count.done.wait(600)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    if not finished:
        raise RuntimeError(f"the consumer got {count.received} of {count.expected}")
    return Drain(count.expected, elapsed)


def drain_paho(host: str, port: int, client_id: str, expected: int, *, v311: bool = False) -> Drain:
    """A bare Python paho 2.x QoS 1 consumer with manual acks, acknowledging at once (MQTT v5
    like ingest, or 3.1.1, which paho decodes about twice as fast)."""
    count = _Count(expected=expected)
    client = bare_client(client_id=client_id, manual_ack=True, v311_persistent=v311)

    def on_message(c: Client, userdata: object, msg: MQTTMessage) -> None:
        c.ack(msg.mid, msg.qos)
        count.add(1)

    client.on_message = on_message
    return _timed_drain(client, host, port, count, v311=v311)


def drain_tuned(host: str, port: int, client_id: str, expected: int) -> Drain:
    """The consumer ingest reads with (`larmkedja.mqtt_fast_paho.FastConsumer`, MQTT v5),
    alone: no parsing, no database; each read's publishes acknowledged in one write."""
    count = _Count(expected=expected)
    client = bare_client(client_id=client_id, manual_ack=True, cls=FastConsumer)
    if not isinstance(client, FastConsumer):  # pragma: no cover - bare_client makes a cls
        raise TypeError("not the tuned consumer")

    def on_publishes(batch: list[Publish]) -> None:
        client.ack_many([p.mid for p in batch])
        count.add(len(batch))

    client.on_publishes = on_publishes
    return _timed_drain(client, host, port, count, v311=False)


def copy_rate(database_url: str, rows: int) -> Drain:
    """Raw COPY into the events hypertable, one transaction, in the binary format ingest uses
    (psycopg's C dumpers; the fastest COPY it has, so the ratio to it is not flattered)."""
    now = datetime.now(UTC)
    data = [
        (now, uuid.uuid4(), "bench", f"b-{i % 250_000:06d}", "heartbeat", now, {"interval_s": 60})
        for i in range(rows)
    ]
    types = ("timestamptz", "uuid", "text", "text", "text", "timestamptz", "jsonb")
    with psycopg.connect(database_url) as conn:
        set_json_dumps(orjson.dumps, context=conn)
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY events (received_at, event_id, site, device_id, kind, device_ts, data)"
                " FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(types)
            for row in data:
                copy.write_row(row)
        conn.commit()
        return Drain(rows, time.perf_counter() - started)
