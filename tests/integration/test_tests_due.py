"""Alarms proven to work, from outside: a silent pendant is due a test call, a test press
ends it and stays out of the KPI, and a test an operator asked for that never comes becomes a
technical alarm."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from alarms.devices.tests_due_psycopg import DueTestSweep
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
ACTIVE = "SELECT count(*) FROM alerts WHERE kind = %s AND subject = %s AND resolved_at IS NULL"


def add_device(database_url: str, device: str, age_s: float) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at)"
            " VALUES (%s, 'solna', now() - make_interval(secs => %s), now(), now() + '1 h')",
            (device, age_s),
        )


def test_a_silent_pendant_is_due_a_test_and_a_test_press_ends_it(
    database_url: str, broker: Broker
) -> None:
    s = settings_for(database_url, broker.host, broker.port, test_due_days=1.0)
    engine_url = as_role(s, "larm_engine").database_url
    add_device(database_url, "d-silent", 2 * 86_400)
    add_device(database_url, "d-fresh", 3_600)
    with running_ingest(s), running_api(s) as url:
        supervisor, operator = token(s, "supervisor"), token(s, "operator")
        with psycopg.connect(engine_url, autocommit=True) as conn:
            assert DueTestSweep(settings=s).run(conn) == 1
        listed = httpx.get(url + "/api/v1/reports/tests-due", headers=supervisor).json()
        assert [d["device_id"] for d in listed] == ["d-silent"]
        assert scalar(database_url, ACTIVE, ("device.test_due", "d-silent")) == 1

        test = make_event("d-silent", Kind.ALARM_BUTTON, {"test": True})
        publish_all(broker.host, broker.port, [(test.topic("solna"), test.to_json())])
        wait_until(
            lambda: scalar(database_url, ACTIVE, ("device.test_due", "d-silent")) == 0,
            timeout=10,
            what="test_due ended by the test press",
        )
        assert httpx.get(url + "/api/v1/reports/tests-due", headers=supervisor).json() == []
        alarm = httpx.get(url + "/api/v1/alarms", headers=operator).json()[0]
        assert alarm["test"] is True
        httpx.post(f"{url}/api/v1/alarms/{alarm['alarm_id']}/answer", headers=operator)
        kpi = httpx.get(url + "/api/v1/kpi/answer-time", headers=operator).json()
        assert kpi["count"] == 0  # a test is not an answer time


def test_a_requested_test_that_never_comes_is_a_technical_alarm(
    database_url: str, broker: Broker
) -> None:
    s = settings_for(database_url, broker.host, broker.port, test_request_window_s=0.5)
    engine_url = as_role(s, "larm_engine").database_url
    add_device(database_url, "d-broken", 60)
    add_device(database_url, "d-works", 60)
    with running_ingest(s), running_api(s) as url:
        operator = token(s, "operator")
        for device in ("d-broken", "d-works"):
            asked = httpx.post(f"{url}/api/v1/devices/{device}/test-request", headers=operator)
            assert asked.status_code == 201
        missing = httpx.post(f"{url}/api/v1/devices/nobody/test-request", headers=operator)
        assert missing.status_code == 404
        test = make_event("d-works", Kind.ALARM_BUTTON, {"test": True})
        publish_all(broker.host, broker.port, [(test.topic("solna"), test.to_json())])
        arrived = "SELECT arrived_at IS NOT NULL FROM test_requests WHERE device_id = 'd-works'"
        wait_until(lambda: scalar(database_url, arrived) is True, timeout=10)
        time.sleep(0.6)
        with psycopg.connect(engine_url, autocommit=True) as conn:
            assert DueTestSweep(settings=s).run(conn) == 1
        queue = httpx.get(url + "/api/v1/alarms", headers=operator).json()
        failed = [a for a in queue if a["kind"] == "device.test_failed"]
        assert [(a["device_id"], a["priority"]) for a in failed] == [("d-broken", 4)]


def test_a_person_away_is_not_due_a_test_and_the_list_says_away(
    database_url: str, broker: Broker
) -> None:
    """An absence window pauses `device.test_due` for the person's devices (a pendant in a
    drawer while its user is in hospital is not a silent pendant), and one that was due before
    the person left is on the supervisor's list as away, not as due. The window ends by itself."""
    from datetime import UTC, datetime, timedelta

    s = settings_for(database_url, broker.host, broker.port, test_due_days=1.0)
    engine_url = as_role(s, "larm_engine").database_url
    for device in ("d-away", "d-back", "d-home", "d-left"):
        add_device(database_url, device, 2 * 86_400)
    now = datetime.now(UTC)
    with running_api(s) as url:
        admin, supervisor = token(s, "admin"), token(s, "supervisor")
        for ref, device in (("P-away", "d-away"), ("P-back", "d-back"), ("P-left", "d-left")):
            body = {"site": "solna", "name": ref, "address": "Gatan 1", "devices": [device]}
            assert httpx.put(f"{url}/api/v1/persons/{ref}", headers=admin, json=body).is_success

        def away(ref: str, start: datetime, until: datetime) -> None:
            window = {"from": start.isoformat(), "until": until.isoformat(), "reason": "sjukhus"}
            put = f"{url}/api/v1/persons/{ref}/absences/a-1"
            assert httpx.put(put, headers=supervisor, json=window).is_success

        # d-left was due before its person left for hospital
        with psycopg.connect(database_url, autocommit=True) as owner:
            owner.execute("UPDATE devices SET first_seen = now() WHERE device_id <> 'd-left'")
            with psycopg.connect(engine_url, autocommit=True) as conn:
                assert DueTestSweep(settings=s).run(conn) == 1
            owner.execute("UPDATE devices SET first_seen = now() - interval '2 days'")
        away("P-left", now - timedelta(hours=1), now + timedelta(days=3))
        away("P-away", now - timedelta(hours=1), now + timedelta(days=3))
        away("P-back", now - timedelta(days=5), now - timedelta(days=1))  # ended by itself
        with psycopg.connect(engine_url, autocommit=True) as conn:
            assert DueTestSweep(settings=s).run(conn) == 2  # d-back and d-home, not d-away
        for device, due in (("d-away", 0), ("d-back", 1), ("d-home", 1), ("d-left", 1)):
            assert scalar(database_url, ACTIVE, ("device.test_due", device)) == due, device
        listed = httpx.get(url + "/api/v1/reports/tests-due", headers=supervisor).json()
        got = {d["device_id"]: (d["away"], d["away_until"] is not None) for d in listed}
        assert got == {"d-left": (True, True), "d-back": (False, False), "d-home": (False, False)}
