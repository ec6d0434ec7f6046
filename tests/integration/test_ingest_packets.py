"""What a device may legally send in MQTT v5, as Mosquitto hands it on to ingest: publishes with
properties (which ingest's reader leaves to the general path) among plain ones (taken in runs,
`mqtt_wire.decode_short_publishes`), remaining lengths of one and two bytes, refused payloads
(NaN and Infinity among them, which only a scan finds) among good ones, all in the same reads.
Every event is stored once, every refusal is a dead letter, and nothing is left unacknowledged:
a new ingest on the same session gets nothing."""

from __future__ import annotations

import time

import psycopg
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.parse import Reason
from larmkedja.events import Kind
from tests.conftest import Broker
from tests.helpers import make_event, publisher, running_ingest, scalar, settings_for, wait_until

pytestmark = pytest.mark.integration
ROUNDS = 150


def properties(i: int) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = ("n", str(i))
    props.ContentType = "application/json"
    props.MessageExpiryInterval = 3600
    return props


def test_plain_and_propertied_publishes_in_the_same_reads(
    database_url: str, broker: Broker
) -> None:
    settings = settings_for(database_url, broker.host, broker.port)
    big = b'{"pad": "' + b"x" * 9000 + b'"}'  # over 8 KiB, under the broker's packet limit
    stored = 0
    with running_ingest(settings):
        client = publisher(broker.host, broker.port)
        sent = []
        for i in range(ROUNDS):
            beat = make_event(f"p-{i % 7}", Kind.HEARTBEAT, {"interval_s": 60})
            topic = beat.topic("solna")
            props = properties(i) if i % 3 == 0 else None
            sent.append(client.publish(topic, beat.to_json(), qos=1, properties=props))
            sent.append(client.publish(topic, b"{}", qos=1))  # one-byte remaining length
            if i % 25 == 0:
                sent.append(client.publish(topic, big, qos=1, properties=props))
            stored += 1
        for spelled in (b"NaN", b"-Infinity"):  # JSON's parser takes them; the contract not
            odd = make_event("p-2", Kind.HEARTBEAT).to_json().replace(b"{}", b'{"x":%s}' % spelled)
            sent.append(client.publish(topic, odd, qos=1))
        alarm = make_event("p-1", Kind.ALARM_FALL)
        sent.append(client.publish(alarm.topic("solna"), alarm.to_json(), 1, False, properties(0)))
        stored += 1
        for info in sent:
            info.wait_for_publish(timeout=10)
        client.disconnect()
        client.loop_stop()
        wait_until(
            lambda: scalar(database_url, "SELECT count(*) FROM events") == stored,
            timeout=15,
            what=f"{stored} events",
        )
        dead = ROUNDS + ROUNDS // 25 + 2
        wait_until(
            lambda: scalar(database_url, "SELECT count(*) FROM dead_letters") == dead,
            timeout=15,
            what=f"{dead} dead letters",
        )
    reasons = dict(_rows(database_url, "SELECT reason, count(*) FROM dead_letters GROUP BY 1"))
    assert reasons == {
        Reason.MISSING_FIELD: ROUNDS,
        Reason.PAYLOAD_TOO_LARGE: ROUNDS // 25,
        Reason.NOT_JSON: 2,
    }
    assert scalar(database_url, "SELECT count(*) FROM alarms WHERE device_id = 'p-1'") == 1
    # The same session again: anything read and not acknowledged would come back now.
    with running_ingest(settings) as again:
        time.sleep(1.5)
        metrics = again.metrics
        for counter in (metrics.received, metrics.dead_letters):
            counted = [s for m in counter.collect() for s in m.samples if s.name.endswith("_total")]
            assert counted and sum(s.value for s in counted) == 0
    assert scalar(database_url, "SELECT count(*) FROM events") == stored
    assert scalar(database_url, "SELECT count(*) FROM event_ids") == stored


def _rows(database_url: str, sql: str) -> list[tuple[str, int]]:
    with psycopg.connect(database_url) as conn:
        return [(str(r), int(n)) for r, n in conn.execute(sql.encode()).fetchall()]
