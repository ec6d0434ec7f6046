"""The alarm chain from outside: mosquitto_pub → queue API and WebSocket, answers, alerts."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
from websockets.sync.client import ClientConnection, connect

from larmkedja.events import Kind
from larmkedja.settings import Settings
from tests.conftest import Broker
from tests.helpers import (
    Subscriber,
    make_event,
    running_api,
    running_engine,
    running_ingest,
    scalar,
    settings_for,
    token,
    wait_until,
)

pytestmark = pytest.mark.integration


@contextmanager
def chain(database_url: str, broker: Broker, **overrides: Any) -> Iterator[tuple[Settings, str]]:
    settings = settings_for(database_url, broker.host, broker.port, **overrides)
    with running_ingest(settings), running_api(settings) as url:
        yield settings, url


def mosquitto_pub(broker: Broker, topic: str, payload: bytes) -> None:
    exe = shutil.which("mosquitto_pub")
    assert exe, "mosquitto-clients is not installed"
    subprocess.run(
        [exe, "-h", broker.host, "-p", str(broker.port), "-q", "1", "-t", topic, "-s"],
        input=payload,
        check=True,
        timeout=10,
    )


def ws_connect(url: str, headers: dict[str, str]) -> ClientConnection:
    return connect(url.replace("http://", "ws://") + "/api/v1/stream", additional_headers=headers)


def next_message(ws: ClientConnection, wanted: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {wanted} message within {timeout} s"
        message = json.loads(ws.recv(timeout=remaining))
        if message["type"] == wanted:
            return dict(message)


def test_a_press_is_in_the_queue_and_on_the_stream_within_a_second_and_folds(
    database_url: str, broker: Broker
) -> None:
    with chain(database_url, broker) as (settings, url):
        headers = token(settings, "operator")
        with ws_connect(url, headers) as ws:
            assert next_message(ws, "snapshot.alarms", 2)["alarms"] == []
            press = make_event("d-42", Kind.ALARM_BUTTON)
            started = time.monotonic()
            mosquitto_pub(broker, press.topic("solna"), press.to_json())
            pushed = next_message(ws, "alarm", 1.0)["alarm"]
            assert time.monotonic() - started < 1.0
            assert pushed["device_id"] == "d-42" and pushed["state"] == "raised"
            queue = httpx.get(f"{url}/api/v1/alarms?state=open", headers=headers).json()
            assert [a["alarm_id"] for a in queue] == [pushed["alarm_id"]]
            assert time.monotonic() - started < 1.0
            for _ in range(2):
                again = make_event("d-42", Kind.ALARM_BUTTON)
                mosquitto_pub(broker, again.topic("solna"), again.to_json())
            wait_until(
                lambda: next_message(ws, "alarm", 1.0)["alarm"]["event_count"] == 3,
                timeout=3,
                what="event_count 3 on the stream",
            )
        queue = httpx.get(f"{url}/api/v1/alarms", headers=headers).json()
    assert len(queue) == 1
    entry = queue[0]
    assert entry["event_count"] == 3 and entry["kind"] == "alarm.button" and entry["priority"] == 1
    assert {
        "alarm_id",
        "device_id",
        "site",
        "kind",
        "priority",
        "state",
        "raised_at",
        "answered_at",
        "waiting_s",
        "event_count",
    } <= entry.keys()
    assert scalar(database_url, "SELECT count(*) FROM alarm_events") == 3


def test_queue_order_is_priority_then_oldest(database_url: str, broker: Broker) -> None:
    with chain(database_url, broker) as (settings, url):
        headers = token(settings, "operator")
        for device, kind in [
            ("d-1", Kind.ALARM_DOOR),
            ("d-2", Kind.ALARM_FALL),
            ("d-3", Kind.ALARM_BED_EXIT),
            ("d-4", Kind.ALARM_BUTTON),
        ]:
            e = make_event(device, kind)
            mosquitto_pub(broker, e.topic("solna"), e.to_json())
            sql = "SELECT count(*) FROM alarms WHERE device_id = %s"
            wait_until(lambda: scalar(database_url, sql, (device,)) == 1, timeout=2)  # noqa: B023
        queue = httpx.get(f"{url}/api/v1/alarms", headers=headers).json()
    assert [a["device_id"] for a in queue] == ["d-2", "d-4", "d-1", "d-3"]


def test_concurrent_answers_give_one_200_and_the_rest_409_and_one_audit_row(
    database_url: str, broker: Broker
) -> None:
    with chain(database_url, broker) as (settings, url):
        operators = [token(settings, "operator", f"op-{i}") for i in range(8)]
        press = make_event("d-5", Kind.ALARM_FALL)
        mosquitto_pub(broker, press.topic("solna"), press.to_json())
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM alarms") == 1, timeout=2)
        alarm_id = scalar(database_url, "SELECT alarm_id FROM alarms")

        async def answer_all() -> list[int]:
            async with httpx.AsyncClient(base_url=url) as client:
                responses = await asyncio.gather(
                    *(
                        client.post(f"/api/v1/alarms/{alarm_id}/answer", headers=h)
                        for h in operators
                    )
                )
            return [r.status_code for r in responses]

        statuses = asyncio.run(answer_all())
    assert sorted(statuses) == [200] + [409] * 7
    audit = "SELECT count(*) FROM audit_log WHERE action = 'alarm.answer' AND subject_id = %s"
    assert scalar(database_url, audit, (str(alarm_id),)) == 1


def test_lifecycle_through_the_api(database_url: str, broker: Broker) -> None:
    with chain(database_url, broker) as (settings, url):
        op = token(settings, "operator", "op-anna")
        patrol = token(settings, "patrol")
        press = make_event("d-6", Kind.ALARM_BUTTON)
        mosquitto_pub(broker, press.topic("solna"), press.to_json())
        cancel = make_event("d-6", Kind.ALARM_CANCEL, {"alarm_kind": "alarm.button"})
        mosquitto_pub(broker, cancel.topic("solna"), cancel.to_json())
        wait_until(
            lambda: scalar(database_url, "SELECT reset_at_device IS NOT NULL FROM alarms"),
            timeout=2,
            what="reset at device",
        )
        alarm_id = scalar(database_url, "SELECT alarm_id FROM alarms")
        base = f"{url}/api/v1/alarms/{alarm_id}"
        queue = httpx.get(f"{url}/api/v1/alarms", headers=op).json()
        assert queue[0]["reset_at_device"] is not None  # reset, but still in the queue

        assert httpx.get(f"{url}/api/v1/alarms").status_code == 401
        assert httpx.get(f"{url}/api/v1/alarms", headers=patrol).status_code == 403
        bad = {"Authorization": "Bearer lk_nope"}
        assert httpx.get(f"{url}/api/v1/alarms", headers=bad).status_code == 401

        resolve = httpx.post(f"{base}/resolve", headers=op, json={"outcome": "no_help_needed"})
        assert resolve.status_code == 409  # nobody answered yet
        assert httpx.post(f"{base}/answer", headers=op).status_code == 200
        assert httpx.post(f"{base}/answer", headers=op).status_code == 409
        assert httpx.post(f"{base}/resolve", headers=op, json={}).status_code == 422
        done = httpx.post(
            f"{base}/resolve",
            headers=op,
            json={"outcome": "help_by_phone", "note": "called back, fine"},
        )
        assert done.status_code == 200
        assert done.json()["state"] == "resolved"
        unknown = httpx.post(f"{url}/api/v1/alarms/{uuid.uuid4()}/answer", headers=op)
        assert unknown.status_code == 404
        assert "Traceback" not in unknown.text
        assert httpx.get(f"{url}/api/v1/alarms", headers=op).json() == []
        again = make_event("d-6", Kind.ALARM_BUTTON)  # a closed alarm never reopens: a new one
        mosquitto_pub(broker, again.topic("solna"), again.to_json())
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM alarms") == 2, timeout=2)
    with psycopg.connect(database_url) as conn:
        actions = conn.execute(
            "SELECT actor, action FROM audit_log WHERE subject_type = 'alarm' ORDER BY id"
        ).fetchall()
    assert actions == [("op-anna", "alarm.answer"), ("op-anna", "alarm.resolve")]


def test_escalating_sends_the_patrol_over_mqtt_once(database_url: str, broker: Broker) -> None:
    patrol_topic = Subscriber(broker.host, broker.port, "larm/v1/+/escalations")
    try:
        with chain(database_url, broker) as (settings, url), running_engine(settings):
            op = token(settings, "operator")
            press = make_event("d-8", Kind.ALARM_FALL)
            mosquitto_pub(broker, press.topic("vallby"), press.to_json())
            wait_until(lambda: scalar(database_url, "SELECT count(*) FROM alarms") == 1, timeout=2)
            alarm_id = scalar(database_url, "SELECT alarm_id FROM alarms")
            sent = httpx.post(
                f"{url}/api/v1/alarms/{alarm_id}/escalate",
                headers=op,
                json={"reason": "no answer on the speaker"},
            )
            assert sent.status_code == 200, sent.text
            assert sent.json()["state"] == "escalated"
            assert sent.json()["answered_at"] is not None  # escalating counts as taking it
            again = httpx.post(
                f"{url}/api/v1/alarms/{alarm_id}/escalate", headers=op, json={"reason": "x"}
            )
            assert again.status_code == 409
            wait_until(lambda: len(patrol_topic.payloads()) == 1, timeout=3, what="escalation")
            time.sleep(0.3)
    finally:
        patrol_topic.close()
    [message] = [json.loads(p) for p in patrol_topic.payloads()]
    assert message["alarm_id"] == str(alarm_id)
    assert message["device_id"] == "d-8" and message["reason"] == "no answer on the speaker"
    assert {"escalation_id", "created_at", "ack_deadline"} <= message.keys()
    assert patrol_topic.messages[0].topic == "larm/v1/vallby/escalations"


def test_the_stream_needs_a_token_and_a_role_and_takes_one_in_a_subprotocol(
    database_url: str, broker: Broker
) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.typing import Subprotocol

    with chain(database_url, broker) as (settings, url):
        ws_url = url.replace("http://", "ws://") + "/api/v1/stream"
        with pytest.raises(InvalidStatus) as missing:
            connect(ws_url).close()
        assert missing.value.response.status_code == 401
        admin = token(settings, "admin")
        with pytest.raises(InvalidStatus) as forbidden:
            connect(ws_url, additional_headers=admin).close()
        assert forbidden.value.response.status_code == 403
        secret = token(settings, "patrol")["Authorization"].removeprefix("Bearer ")
        protocols = [Subprotocol("larmkedja.v1"), Subprotocol(f"bearer.{secret}")]
        with connect(ws_url, subprotocols=protocols) as ws:
            assert ws.subprotocol == "larmkedja.v1"
            first = json.loads(ws.recv(timeout=2))
            assert first["type"] == "snapshot.escalations"  # a patrol sees escalations only


def test_a_burst_of_changes_in_one_transaction_reaches_the_stream_whole(
    database_url: str, broker: Broker
) -> None:
    """300 devices going offline in one sweep notify 300 changes at once: the stream reads
    them in batches and every one arrives, and a person's alarm pressed during it too."""
    with chain(database_url, broker) as (settings, url):
        headers = token(settings, "operator")
        with ws_connect(url, headers) as ws:
            assert next_message(ws, "snapshot.alarms", 2)["alarms"] == []
            with psycopg.connect(database_url) as conn:
                conn.execute(
                    "INSERT INTO alarms (site, device_id, kind, priority, source, raised_at,"
                    " last_event_at, unanswered_due_at)"
                    " SELECT 'solna', 'off-' || n, 'device.offline', 4, 'system', now(), now(),"
                    " now() + interval '1 minute' FROM generate_series(1, 300) n"
                )
            press = make_event("d-7", Kind.ALARM_BUTTON)
            mosquitto_pub(broker, press.topic("solna"), press.to_json())
            seen: set[str] = set()
            while len(seen) < 301:
                seen.add(next_message(ws, "alarm", 10)["alarm"]["device_id"])
    assert seen == {f"off-{n}" for n in range(1, 301)} | {"d-7"}
