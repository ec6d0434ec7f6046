"""Absence windows on the real stack, in seconds (issue 19): a person away has no
`device.offline` and no night checks inside the window and has them outside it; the window ends
by itself; an alarm that comes anyway is in the queue, flagged."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from larmkedja.events import Kind
from larmkedja.settings import Settings
from tests.conftest import Broker
from tests.helpers import (
    Subscriber,
    make_event,
    publish_all,
    running_api,
    running_engine,
    running_ingest,
    scalar,
    settings_for,
    token,
    wait_until,
)

pytestmark = pytest.mark.integration
STOCKHOLM = ZoneInfo("Europe/Stockholm")
FAST = {
    "heartbeat_misses": 3,
    "engine_tick_s": 0.1,
    "recheck_minutes": 0.02,
    "patrol_ack_minutes": 0.1,
    "night_lead_minutes": 0.05,
}


@pytest.fixture
def stack(database_url: str, broker: Broker) -> Iterator[tuple[Settings, str]]:
    s = settings_for(database_url, broker.host, broker.port, **FAST)
    with running_ingest(s), running_engine(s), running_api(s) as url:
        yield s, url


def send(broker: Broker, *events: Any) -> None:
    publish_all(broker.host, broker.port, [(e.topic("solna"), e.to_json()) for e in events])


def iso(at: datetime) -> str:
    return at.isoformat()


def person(url: str, ref: str, devices: list[str], plans: list[str], admin: Any) -> None:
    body = {
        "site": "solna",
        "name": f"Person {ref}",
        "address": "Gatan 1",
        "devices": devices,
        "plans": plans,
        "access": [{"kind": "patrol_key", "ref": ref}],
    }
    assert httpx.put(f"{url}/api/v1/persons/{ref}", headers=admin, json=body).status_code == 200


def away(url: str, ref: str, start: datetime, until: datetime, sup: Any) -> None:
    body = {"from": iso(start), "until": iso(until), "reason": "in hospital"}
    got = httpx.put(f"{url}/api/v1/persons/{ref}/absences/a-1", headers=sup, json=body)
    assert got.status_code == 200, got.text


def offline_alerts(sub: Subscriber) -> list[tuple[str, str]]:
    return [
        (m["subject"], m["state"])
        for m in map(json.loads, sub.payloads())
        if m["kind"] == "device.offline"
    ]


def test_an_absence_stops_device_offline_inside_it_and_not_outside_and_ends_by_itself(
    stack: tuple[Settings, str], broker: Broker, database_url: str
) -> None:
    s, url = stack
    admin, sup, op = token(s, "admin"), token(s, "supervisor"), token(s, "operator")
    now = datetime.now(UTC)
    person(url, "P-away", ["d-away"], [], admin)
    person(url, "P-home", ["d-home"], [], admin)
    away(url, "P-away", now - timedelta(hours=1), now + timedelta(seconds=4), sup)
    away(url, "P-home", now + timedelta(hours=1), now + timedelta(hours=2), sup)  # not yet
    alerts = Subscriber(broker.host, broker.port, "larm/v1/+/alerts")
    try:
        beats = [make_event(d, Kind.HEARTBEAT, {"interval_s": 0.2}) for d in ("d-away", "d-home")]
        send(broker, *beats)
        wait_until(lambda: ("d-home", "active") in offline_alerts(alerts), timeout=3, what="home")
        time.sleep(0.6)  # d-away is as silent as d-home: past its deadline for a second now
        assert ("d-away", "active") not in offline_alerts(alerts)
        assert scalar(database_url, "SELECT online FROM devices WHERE device_id = 'd-away'")

        # an alarm that comes anyway is in the queue, flagged; the other one is not
        send(
            broker, make_event("d-away", Kind.ALARM_BUTTON), make_event("d-home", Kind.ALARM_BUTTON)
        )
        presses = "SELECT count(*) FROM alarms WHERE kind = 'alarm.button'"
        wait_until(lambda: scalar(database_url, presses) == 2, timeout=5)
        queue = httpx.get(f"{url}/api/v1/alarms", headers=op).json()
        flags = {a["device_id"]: a["absent"] for a in queue if a["kind"] == "alarm.button"}
        assert flags == {"d-away": True, "d-home": False}

        # the absence ends by itself: still silent, d-away is offline at once after it
        wait_until(lambda: ("d-away", "active") in offline_alerts(alerts), timeout=8, what="end")
        ended = datetime.now(UTC)
        assert ended >= now + timedelta(seconds=4)
    finally:
        alerts.close()


def local(at: datetime) -> str:
    return at.astimezone(STOCKHOLM).strftime("%H:%M:%S")


def test_an_absence_stops_the_night_checks_inside_it_and_not_outside(
    stack: tuple[Settings, str], broker: Broker, database_url: str
) -> None:
    """Three people's cameras with one check each, in 4 s: A is away over it (from before the
    plan was made), C goes away after its check was made, B's absence ended before it. Only
    B's check is there and, with no result, missed and escalated."""
    s, url = stack
    admin, sup = token(s, "admin"), token(s, "supervisor")
    cameras = {"A": "cam-a", "B": "cam-b", "C": "cam-c"}
    send(broker, *(make_event(c, Kind.HEARTBEAT, {"interval_s": 3600}) for c in cameras.values()))
    wait_until(lambda: scalar(database_url, "SELECT count(*) FROM devices") == 3, timeout=3)
    now = datetime.now(UTC).replace(microsecond=0)
    at = now + timedelta(seconds=4)
    for ref in cameras:
        person(url, f"P-{ref}", [], [f"plan-{ref}"], admin)
    away(url, "P-A", now - timedelta(hours=1), now + timedelta(hours=1), sup)
    away(url, "P-B", now - timedelta(hours=1), now + timedelta(seconds=2), sup)
    for ref, camera in cameras.items():
        plan = {"device_id": camera, "site": "solna", "checks": [local(at)], "window_minutes": 0.05}
        got = httpx.put(f"{url}/api/v1/supervision/plans/plan-{ref}", headers=sup, json=plan)
        assert got.status_code == 200, got.text
    checks = "SELECT plan_id FROM supervision_checks WHERE scheduled_for = %s ORDER BY plan_id"
    with psycopg.connect(database_url) as conn:
        assert [r[0] for r in conn.execute(checks, (at,))] == ["plan-B", "plan-C"]
    away(url, "P-C", now, now + timedelta(hours=1), sup)
    wait_until(
        lambda: scalar(database_url, "SELECT count(*) FROM escalations") >= 1,
        timeout=12,
        what="B's missed check escalated",
    )
    time.sleep(1.0)  # the engine ran its sweeps over A's and C's times: nothing for them
    with psycopg.connect(database_url) as conn:
        assert [r[0] for r in conn.execute(checks, (at,))] == ["plan-B"]
        assert conn.execute("SELECT plan_id, reason FROM escalations").fetchall() == [
            ("plan-B", "check missed: no result by the end of its window")
        ]
        missed = "SELECT count(*) FROM alerts WHERE kind = 'supervision.check_missed'"
        assert conn.execute(missed).fetchone() == (1,)
