"""The case of an alarm from outside (contract §6): a press through MQTT and ingest, the
operator's call attempts, notes and outcome code, the patrol's steps, a take-over, test alarms
and `alarm.stale`, all through the real API on the real database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest

from alarms.queue.sweeps_psycopg import StaleSweep
from larmkedja.events import Kind
from larmkedja.settings import Settings
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


@contextmanager
def chain(database_url: str, broker: Broker, **overrides: Any) -> Iterator[tuple[Settings, str]]:
    settings = settings_for(database_url, broker.host, broker.port, **overrides)
    with running_ingest(settings), running_api(settings) as url:
        yield settings, url


def press(settings: Settings, broker: Broker, device: str, **data: Any) -> str:
    """Publish one press; the id of its alarm once ingest has raised it."""
    event = make_event(device, Kind.ALARM_BUTTON, data or None)
    publish_all(broker.host, broker.port, [(event.topic("solna"), event.to_json())])
    sql = "SELECT alarm_id::text FROM alarms WHERE device_id = %s AND state <> 'resolved'"
    wait_until(lambda: scalar(settings.database_url, sql, (device,)) is not None, timeout=10)
    return str(scalar(settings.database_url, sql, (device,)))


def post(url: str, path: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
    return httpx.post(url + path, headers=headers, json=body, timeout=10)


def test_an_alarm_is_a_whole_case_from_the_press_to_the_outcome(
    database_url: str, broker: Broker
) -> None:
    with chain(database_url, broker) as (settings, url):
        operator = token(settings, "operator", name="op-anna")
        patrol = token(settings, "patrol", name="patrol-1")
        alarm_id = press(settings, broker, "d-case")
        base = f"/api/v1/alarms/{alarm_id}"
        assert (
            post(url, f"{base}/calls", operator, {"contact": "Eva", "reached": False}).status_code
            == 409
        )
        assert post(url, f"{base}/answer", operator).status_code == 200
        call = post(url, f"{base}/calls", operator, {"contact": "Eva (dotter)", "reached": False})
        assert call.status_code == 201, call.text
        post(url, f"{base}/calls", operator, {"contact": "070-123 45 67", "reached": True})
        assert (
            post(url, f"{base}/notes", operator, {"text": "Fallen in the hall"}).status_code == 201
        )
        escalated = post(url, f"{base}/escalate", operator, {"reason": "fall, cannot get up"})
        escalation = escalated.json()["escalation_id"]
        for step in ("ack", "arrive"):
            assert post(url, f"/api/v1/escalations/{escalation}/{step}", patrol).status_code == 200
        assert (
            post(url, f"{base}/notes", patrol, {"text": "Helped up, no injury"}).status_code == 201
        )
        complete = f"/api/v1/escalations/{escalation}/complete"
        wrong = post(url, complete, patrol, {"outcome": "ok", "code": "called_back"})
        assert wrong.status_code == 422 and "called_back" in wrong.text
        done = post(url, complete, patrol, {"outcome": "helped up", "code": "visit"})
        assert done.status_code == 200, done.text
        assert done.json()["outcome"] == "helped up" and done.json()["outcome_code"] == "visit"
        assert post(url, f"{base}/resolve", operator, {"note": "fine"}).status_code == 422
        unknown = post(url, f"{base}/resolve", operator, {"outcome": "called_back"})
        assert unknown.status_code == 422 and "called_back" in unknown.text
        closed = post(url, f"{base}/resolve", operator, {"outcome": "visit", "note": "all well"})
        assert closed.status_code == 200, closed.text

        case = httpx.get(url + base, headers=patrol, timeout=10).json()
        steps = [(s["action"], s["by"]) for s in case["case"]]
        assert steps == [
            ("raised", "system"),
            ("answered", "op-anna"),
            ("call", "op-anna"),
            ("call", "op-anna"),
            ("note", "op-anna"),
            ("escalated", "op-anna"),
            ("patrol_ack", "patrol-1"),
            ("patrol_arrive", "patrol-1"),
            ("note", "patrol-1"),
            ("patrol_complete", "patrol-1"),
            ("resolved", "op-anna"),
        ]
        times = [s["at"] for s in case["case"]]
        assert times == sorted(times)
        assert case["case"][2]["detail"] == {"contact": "Eva (dotter)", "reached": False}
        assert case["case"][-1]["detail"] == {"outcome": "visit", "note": "all well"}
        assert case["case"][-2]["detail"] == {"text": "helped up", "code": "visit"}
        assert case["state"] == "resolved" and case["outcome"] == "visit"
        assert case["test"] is False and "person" in case
        # The audit log knows a call and a note happened, not whom or what was written.
        audit = scalar(
            settings.database_url,
            "SELECT string_agg(details::text, ' ') FROM audit_log WHERE subject_id = %s",
            (alarm_id,),
        )
        assert "Eva" not in audit and "070" not in audit and "Fallen" not in audit


def test_the_outcome_codes_are_listed_and_in_the_schema(database_url: str, broker: Broker) -> None:
    codes = ["no_help_needed", "visit", "test"]
    with chain(database_url, broker, outcome_codes=codes) as (settings, url):
        listed = httpx.get(url + "/api/v1/outcomes", headers=token(settings, "operator"))
        assert listed.json() == codes
        schema = httpx.get(url + "/openapi.json").json()
        assert (
            schema["components"]["schemas"]["ResolveIn"]["properties"]["outcome"]["enum"] == codes
        )
        assert httpx.get(url + "/api/v1/outcomes").status_code == 401


def test_taking_over_an_alarm_is_audited_and_in_the_case(database_url: str, broker: Broker) -> None:
    with chain(database_url, broker) as (settings, url):
        day = token(settings, "operator", name="op-day")
        night = token(settings, "operator", name="op-night")
        alarm_id = press(settings, broker, "d-shift")
        base = f"/api/v1/alarms/{alarm_id}"
        assert post(url, f"{base}/take-over", night).status_code == 409  # nobody has it yet
        post(url, f"{base}/answer", day)
        assert post(url, f"{base}/take-over", day).status_code == 409  # it is hers already
        taken = post(url, f"{base}/take-over", night)
        assert taken.status_code == 200 and taken.json()["handled_by"] == "op-night"
        assert taken.json()["answered_by"] == "op-day"  # the answer time stays hers
        case = httpx.get(url + base, headers=night, timeout=10).json()["case"]
        assert case[-1]["action"] == "taken_over" and case[-1]["detail"] == {"from": "op-day"}
        audited = scalar(
            settings.database_url,
            "SELECT count(*) FROM audit_log WHERE action = 'alarm.take_over' AND actor = %s",
            ("op-night",),
        )
        assert audited == 1
        missing = post(url, f"/api/v1/alarms/{uuid.uuid4()}/take-over", night)
        assert missing.status_code == 404


def test_a_test_alarm_is_marked_and_a_real_press_makes_it_real(
    database_url: str, broker: Broker
) -> None:
    with chain(database_url, broker) as (settings, url):
        operator = token(settings, "operator")
        alarm_id = press(settings, broker, "d-test", test=True)
        alarm = httpx.get(f"{url}/api/v1/alarms/{alarm_id}", headers=operator).json()
        assert alarm["test"] is True
        queue = httpx.get(url + "/api/v1/alarms", headers=operator).json()
        assert [a["test"] for a in queue] == [True]
        event = make_event("d-test", Kind.ALARM_BUTTON)  # a real press while the test is open
        publish_all(broker.host, broker.port, [(event.topic("solna"), event.to_json())])
        sql = "SELECT test FROM alarms WHERE alarm_id = %s"
        wait_until(lambda: scalar(settings.database_url, sql, (alarm_id,)) is False, timeout=10)


def test_an_answered_alarm_left_alone_raises_alarm_stale_once(
    database_url: str, broker: Broker
) -> None:
    with chain(database_url, broker, stale_answered_minutes=0.3 / 60) as (settings, url):
        operator = token(settings, "operator")
        alarm_id = press(settings, broker, "d-stale")
        post(url, f"/api/v1/alarms/{alarm_id}/answer", operator)
        sweep = StaleSweep(settings=settings)
        engine_url = as_role(settings, "larm_engine").database_url
        with psycopg.connect(engine_url, autocommit=True) as conn:
            assert sweep.run(conn) == 0  # not yet
            time.sleep(0.4)
            assert sweep.run(conn) == 1
            assert sweep.run(conn) == 0  # once
        active = "SELECT count(*) FROM alerts WHERE kind = 'alarm.stale' AND resolved_at IS NULL"
        assert scalar(settings.database_url, active) == 1
        post(url, f"/api/v1/alarms/{alarm_id}/resolve", operator, {"outcome": "help_by_phone"})
        assert scalar(settings.database_url, active) == 0


def test_the_handover_lists_what_is_open_and_who_has_it(database_url: str, broker: Broker) -> None:
    with chain(database_url, broker) as (settings, url):
        day = token(settings, "operator", name="op-day")
        answered = press(settings, broker, "d-open")
        post(url, f"/api/v1/alarms/{answered}/answer", day)
        escalated = press(settings, broker, "d-help")
        post(url, f"/api/v1/alarms/{escalated}/escalate", day, {"reason": "visit"})
        done = press(settings, broker, "d-done")
        post(url, f"/api/v1/alarms/{done}/answer", day)
        post(url, f"/api/v1/alarms/{done}/resolve", day, {"outcome": "no_help_needed"})
        with psycopg.connect(settings.database_url) as conn:  # two devices, faults old and new
            for device, since in (("d-old", "2 days"), ("d-new", "1 hour")):
                conn.execute(
                    "INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at,"
                    " online, online_changed_at) VALUES (%s, 'solna', now() - interval '9 days',"
                    " now() - %s::interval, now(), false, now() - %s::interval)",
                    (device, since, since),
                )
        got = httpx.get(url + "/api/v1/handover", headers=day, timeout=10).json()
        assert {(a["device_id"], a["handled_by"]) for a in got["alarms"]} == {
            ("d-open", "op-day"),
            ("d-help", "op-day"),
        }
        assert [e["device_id"] for e in got["escalations"]] == ["d-help"]
        assert [(f["device_id"], f["fault"]) for f in got["device_faults"]] == [
            ("d-old", "offline")
        ]
        patrol = token(settings, "patrol")
        assert httpx.get(url + "/api/v1/handover", headers=patrol).status_code == 403
