"""Flood mode from outside: 300 `device.offline` alarms of one site in seconds become one
incident row, a button pressed meanwhile is first in the queue, and the operator answers and
resolves the 300 in two actions, each alarm audited on its own."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from alarms.devices.sweeps_psycopg import OfflineSweep
from alarms.queue.incidents_psycopg import IncidentSweep
from larmkedja.events import Kind
from tests.conftest import Broker
from tests.helpers import (
    as_role,
    make_event,
    publish_all,
    running_api,
    running_ingest,
    scalar,
    settings_for,
    token,
    wait_until,
)

pytestmark = pytest.mark.integration


def test_a_burst_of_offline_alarms_is_one_incident_and_a_press_stays_first(
    database_url: str, broker: Broker
) -> None:
    settings = settings_for(database_url, broker.host, broker.port, flood_window_s=2.0)
    engine_url = as_role(settings, "larm_engine").database_url
    with running_ingest(settings), running_api(settings) as url:
        operator = token(settings, "operator")
        with psycopg.connect(settings.database_url) as conn:  # 300 devices whose deadline passed
            conn.execute(
                "INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at)"
                " SELECT 'cut-' || n, 'kista', now() - interval '1 day', now() - interval '5 min',"
                " now() - interval '1 s' FROM generate_series(1, 300) n"
            )
        with psycopg.connect(engine_url, autocommit=True) as conn:
            assert OfflineSweep(settings=settings).run(conn) == 300
        press = make_event("d-press", Kind.ALARM_BUTTON)
        publish_all(broker.host, broker.port, [(press.topic("kista"), press.to_json())])
        count = "SELECT count(*) FROM alarms"
        wait_until(lambda: scalar(settings.database_url, count) == 301, timeout=10)
        with psycopg.connect(engine_url, autocommit=True) as conn:
            IncidentSweep(settings=settings).run(conn)

        queue = httpx.get(url + "/api/v1/alarms?limit=5000", headers=operator).json()
        assert queue[0]["kind"] == "alarm.button" and queue[0]["incident_id"] is None
        incident_ids = {a["incident_id"] for a in queue[1:]}
        assert len(incident_ids) == 1 and None not in incident_ids
        incidents = httpx.get(url + "/api/v1/incidents", headers=operator).json()
        assert [(i["kind"], i["alarms"], i["raised"]) for i in incidents] == [
            ("device.offline", 300, 300)
        ]
        incident = incidents[0]["incident_id"]

        answered = httpx.post(f"{url}/api/v1/incidents/{incident}/answer", headers=operator)
        assert answered.status_code == 200 and len(answered.json()) == 300
        audited = "SELECT count(*) FROM audit_log WHERE action = 'alarm.answer'"
        assert scalar(settings.database_url, audited) == 300  # one audit row per alarm
        bad = httpx.post(
            f"{url}/api/v1/incidents/{incident}/resolve", headers=operator, json={"outcome": "x"}
        )
        assert bad.status_code == 422
        resolved = httpx.post(
            f"{url}/api/v1/incidents/{incident}/resolve",
            headers=operator,
            json={"outcome": "technical_fault", "note": "power cut in Kista"},
        )
        assert len(resolved.json()) == 300
        left = httpx.get(url + "/api/v1/alarms", headers=operator).json()
        assert [a["kind"] for a in left] == ["alarm.button"]  # the press was never touched
        time.sleep(2.1)
        with psycopg.connect(engine_url, autocommit=True) as conn:
            IncidentSweep(settings=settings).run(conn)
        assert httpx.get(url + "/api/v1/incidents", headers=operator).json() == []


def test_safety_alarms_are_never_grouped(database_url: str, broker: Broker) -> None:
    settings = settings_for(database_url, broker.host, broker.port, flood_threshold=3)
    with running_ingest(settings):
        presses = [make_event(f"p-{n}", Kind.ALARM_BUTTON) for n in range(10)]
        publish_all(broker.host, broker.port, [(e.topic("kista"), e.to_json()) for e in presses])
        wait_until(
            lambda: scalar(settings.database_url, "SELECT count(*) FROM alarms") == 10, timeout=10
        )
        engine_url = as_role(settings, "larm_engine").database_url
        with psycopg.connect(engine_url, autocommit=True) as conn:
            assert IncidentSweep(settings=settings).run(conn) == 0
        assert scalar(settings.database_url, "SELECT count(*) FROM incidents") == 0
