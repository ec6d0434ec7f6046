"""Ingest on a real Mosquitto and a real TimescaleDB."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from ingest.metrics import IngestMetrics
from ingest.parse import Reason
from ingest.service import Ingest
from ingest.store_psycopg import EventStore
from larmkedja.events import Kind, ReceivedEvent
from tests.conftest import Broker
from tests.helpers import (
    Subscriber,
    make_event,
    publish_all,
    running_ingest,
    scalar,
    settings_for,
    wait_until,
)

pytestmark = pytest.mark.integration
MISSING = Reason.MISSING_FIELD


def count_events(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM events"))


def test_published_events_are_rows_within_a_second_and_once(
    database_url: str, broker: Broker
) -> None:
    settings = settings_for(database_url, broker.host, broker.port)
    with running_ingest(settings):
        alarm = make_event("d-7", Kind.ALARM_BUTTON, {"component": "wrist"})
        beat = make_event("d-7", Kind.HEARTBEAT, {"interval_s": 60})
        started = time.monotonic()
        publish_all(broker.host, broker.port, [(alarm.topic("solna"), alarm.to_json())] * 2)
        publish_all(broker.host, broker.port, [(beat.topic("solna"), beat.to_json())])
        wait_until(lambda: count_events(database_url) == 2, timeout=1.0, what="2 rows")
        assert time.monotonic() - started < 1.0
        time.sleep(0.3)  # a late duplicate would show up now
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT event_id, site, device_id, kind, device_ts, data FROM events ORDER BY kind"
        ).fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (alarm.event_id, "solna", "d-7", "alarm.button"),
        (beat.event_id, "solna", "d-7", "heartbeat"),
    ]
    assert rows[0][4] == alarm.ts
    assert rows[0][5] == {"component": "wrist"}
    assert scalar(database_url, "SELECT count(*) FROM event_ids") == 2


def test_every_bad_input_class_is_a_dead_letter_and_ingest_keeps_running(
    database_url: str, broker: Broker
) -> None:
    good = make_event("d-1", Kind.ALARM_FALL)
    base = json.loads(good.to_json())

    def variant(**changes: object) -> bytes:
        return json.dumps({**base, "event_id": str(uuid.uuid4()), **changes}).encode()

    topic = good.topic("solna")
    bad: Sequence[tuple[str, bytes, Reason]] = [
        (topic, b"\xff\xfe\x00", Reason.NOT_UTF8),
        (topic, b"{nope", Reason.NOT_JSON),
        (topic, b"[1,2,3]", Reason.NOT_OBJECT),
        (topic, variant(event_id=None), Reason.BAD_EVENT_ID),
        (topic, json.dumps({k: v for k, v in base.items() if k != "ts"}).encode(), MISSING),
        (topic, variant(device_id=42), Reason.WRONG_TYPE),
        (topic, variant(kind="alarm.unheard_of"), Reason.UNKNOWN_KIND),
        (topic, variant(v=2), Reason.BAD_VERSION),
        (topic, variant(ts="2026-11-23 25:00"), Reason.BAD_TIMESTAMP),
        (topic, variant(ts="2026-11-23T22:00:00"), Reason.BAD_TIMESTAMP),
        (topic, variant(device_id="d-2"), Reason.DEVICE_MISMATCH),
        ("larm/v1/SOLNA/d-1/events", variant(), Reason.BAD_TOPIC),
        (topic, variant(data={"pad": "x" * 9000}), Reason.PAYLOAD_TOO_LARGE),
        (topic, variant(kind="battery.report", data={"percent": "full"}), Reason.BAD_DATA),
    ]
    settings = settings_for(database_url, broker.host, broker.port)
    notices = Subscriber(broker.host, broker.port, "larm/v1/+/deadletter")
    try:
        with running_ingest(settings) as ingest:
            publish_all(broker.host, broker.port, [(t, p) for t, p, _ in bad])
            publish_all(broker.host, broker.port, [(topic, good.to_json())])
            wait_until(
                lambda: (
                    scalar(database_url, "SELECT count(*) FROM dead_letters") == len(bad)
                    and count_events(database_url) == 1
                ),
                timeout=5,
                what="every dead letter and the good event",
            )
            wait_until(lambda: len(notices.payloads()) == len(bad), timeout=5, what="notices")
            assert ingest.connected
    finally:
        notices.close()
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT reason, octet_length(payload_head), topic FROM dead_letters ORDER BY id"
        ).fetchall()
    assert sorted(r[0] for r in stored) == sorted(reason.value for _, _, reason in bad)
    assert all(r[1] <= 256 for r in stored)
    received = [json.loads(p) for p in notices.payloads()]
    assert sorted(n["reason"] for n in received) == sorted(r.value for _, _, r in bad)
    for notice in received:
        assert {"topic", "reason", "received_at"} <= notice.keys()
        assert len(notice.get("payload_head", "").encode()) <= 256 * 3  # 256 bytes, as text


def test_nothing_is_acknowledged_before_it_is_committed(
    database_url: str, broker: Broker, postgres: object
) -> None:
    """With the database unreachable, ingest holds its acks; the broker keeps the messages in
    the persistent session and delivers them to the next run, which stores them."""
    instance = uuid.uuid4().hex[:8]
    unreachable = database_url.rsplit("/", 1)[0].rsplit(":", 1)[0] + ":1/none"
    events = [make_event(f"d-{i}", Kind.ALARM_BUTTON) for i in range(50)]
    down = settings_for(unreachable, broker.host, broker.port, ingest_instance=instance)
    with running_ingest(down):
        publish_all(broker.host, broker.port, [(e.topic("solna"), e.to_json()) for e in events])
        time.sleep(0.5)
    up = settings_for(database_url, broker.host, broker.port, ingest_instance=instance)
    with running_ingest(up):
        wait_until(lambda: count_events(database_url) == 50, timeout=10, what="50 events")


Cursor = psycopg.Cursor[tuple[object, ...]]


class _Poison:
    """A processor that the database refuses for one event (as a bad row would be refused)."""

    def process(self, cur: Cursor, notable: Sequence[ReceivedEvent]) -> None:
        for r in notable:
            if r.event.data.get("poison"):
                cur.execute("SELECT 1/0")


def test_an_event_the_database_refuses_becomes_a_dead_letter_and_the_rest_is_stored(
    database_url: str, broker: Broker
) -> None:
    settings = settings_for(database_url, broker.host, broker.port, ingest_flush_s=0.5)
    ingest = Ingest(
        settings=settings,
        store_factory=lambda: EventStore(conninfo=database_url, processors=[_Poison()]),
        metrics=IngestMetrics(registry=CollectorRegistry()),
    )
    thread = threading.Thread(target=ingest.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: ingest.connected, timeout=10)
        events = [make_event(f"d-{i}", Kind.HEARTBEAT) for i in range(20)]
        events.insert(7, make_event("d-p", Kind.LINK_RESTORED, {"poison": True}))
        publish_all(broker.host, broker.port, [(e.topic("solna"), e.to_json()) for e in events])
        wait_until(lambda: count_events(database_url) == 20, timeout=10, what="20 good events")
        wait_until(
            lambda: scalar(database_url, "SELECT reason FROM dead_letters") == "store_rejected",
            timeout=5,
        )
    finally:
        ingest.stop()
        thread.join(15)
