"""A whole night of digital supervision in seconds, on the real stack, and the engine killed
with deadlines pending."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from alarms.night.rules import night_of
from larmkedja.events import Kind
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
# How long after its deadline (window end, or re-check deadline) each escalation was made.
ESCALATION_DELAY = """
SELECT e.plan_id,
       extract(epoch FROM e.created_at - coalesce(c.recheck_deadline, c.window_end))::float8
FROM escalations e JOIN supervision_checks c USING (check_id)
WHERE e.plan_id IN ('missed', 'no-recheck')
"""
STOCKHOLM = ZoneInfo("Europe/Stockholm")
WINDOW_MIN = 0.05  # 3 s
FAST = {
    "recheck_minutes": 0.02,  # 1.2 s
    "patrol_ack_minutes": 0.25,  # 15 s: the acks below come up to 11 s after the first escalation
    "night_lead_minutes": 0.05,
    "engine_tick_s": 0.1,
}


def local(at: datetime) -> str:
    return at.astimezone(STOCKHOLM).strftime("%H:%M:%S")


def put_plan(
    url: str, headers: dict[str, str], plan_id: str, camera: str, at: datetime, **extra: Any
) -> dict[str, Any]:
    body = {
        "device_id": camera,
        "site": "natt",
        "checks": [local(at)],
        "window_minutes": WINDOW_MIN,
        **extra,
    }
    response = httpx.put(f"{url}/api/v1/supervision/plans/{plan_id}", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def result(camera: str, plan_id: str, at: datetime, outcome: str) -> Any:
    return make_event(
        camera,
        Kind.CHECK_RESULT,
        {
            "plan_id": plan_id,
            "scheduled_for": at.isoformat(),
            "outcome": outcome,
            "operator": "op-7",
            "duration_s": 25,
        },
    )


def check_of(url: str, headers: dict[str, str], plan_id: str, night: date) -> dict[str, Any]:
    rows = httpx.get(
        f"{url}/api/v1/supervision/checks", params={"night": night.isoformat()}, headers=headers
    ).json()
    [row] = [r for r in rows if r["plan_id"] == plan_id]
    return dict(row)


def test_a_whole_night_in_seconds(database_url: str, broker: Broker) -> None:
    s = settings_for(database_url, broker.host, broker.port, **FAST)
    patrol_topic = Subscriber(broker.host, broker.port, "larm/v1/natt/escalations")
    alerts = Subscriber(broker.host, broker.port, "larm/v1/natt/alerts")
    cameras = {
        p: f"cam-{p}"
        for p in [
            "ok",
            "recheck-ok",
            "recheck-fail",
            "no-recheck",
            "help",
            "cam",
            "missed",
            "power",
            "paused",
        ]
    }
    try:
        with running_ingest(s), running_engine(s), running_api(s) as url:
            sup = token(s, "supervisor", "sup-1")
            patrol = token(s, "patrol", "natt-1")
            publish_all(
                broker.host,
                broker.port,
                [
                    (e.topic("natt"), e.to_json())
                    for e in (
                        make_event(c, Kind.HEARTBEAT, {"interval_s": 3600})
                        for c in cameras.values()
                    )
                ],
            )
            wait_until(lambda: scalar(database_url, "SELECT count(*) FROM devices") == 9, timeout=3)
            at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
            night = night_of(at, STOCKHOLM)
            for plan_id, camera in cameras.items():
                paused = [night.isoformat()] if plan_id == "paused" else []
                put_plan(url, sup, plan_id, camera, at, paused_nights=paused)
            tonight = "SELECT count(*) FROM supervision_checks WHERE night = %s"
            assert scalar(database_url, tonight, (night,)) == 8  # the paused plan has none

            def send(*events: Any) -> None:
                publish_all(
                    broker.host, broker.port, [(e.topic("natt"), e.to_json()) for e in events]
                )

            wait_until(lambda: datetime.now(UTC) >= at, timeout=5)
            send(
                result(cameras["ok"], "ok", at, "seen_ok"),
                result(cameras["recheck-ok"], "recheck-ok", at, "not_seen"),
                result(cameras["recheck-fail"], "recheck-fail", at, "not_seen"),
                result(cameras["no-recheck"], "no-recheck", at, "not_seen"),
                result(cameras["help"], "help", at, "needs_help"),
                result(cameras["cam"], "cam", at, "camera_offline"),
                result(cameras["power"], "power", at, "seen_ok"),
                make_event(cameras["power"], Kind.POWER_MAINS_LOST),
            )
            time.sleep(0.5)
            send(
                result(cameras["recheck-ok"], "recheck-ok", at, "seen_ok"),
                result(cameras["recheck-fail"], "recheck-fail", at, "not_seen"),
            )
            # the window (3 s) and the no-recheck deadline (1.2 s + 3 s) pass
            wait_until(
                lambda: scalar(database_url, "SELECT count(*) FROM escalations") == 6,
                timeout=10,
                what="six escalations",
            )
            time.sleep(0.5)  # a second firing would show now
            op = token(s, "operator")
            queue = httpx.get(f"{url}/api/v1/alarms", headers=op).json()
            states = {p: check_of(url, sup, p, night)["state"] for p in cameras if p != "paused"}
            esc = httpx.get(f"{url}/api/v1/escalations", headers=patrol).json()

            # the patrol: one acknowledged late (after the reminder), the rest at once
            by_plan = {e["plan_id"]: e for e in esc}
            late = by_plan["missed"]["escalation_id"]
            for e in esc:
                if e["escalation_id"] != late:
                    eid = e["escalation_id"]
                    assert httpx.post(
                        f"{url}/api/v1/escalations/{eid}/ack", headers=patrol
                    ).is_success
                    assert httpx.post(
                        f"{url}/api/v1/escalations/{eid}/arrive", headers=patrol
                    ).is_success
                    done = httpx.post(
                        f"{url}/api/v1/escalations/{eid}/complete",
                        headers=patrol,
                        json={"outcome": "visited, all well"},
                    )
                    assert done.status_code == 200
            unacked = (
                "SELECT count(*) FROM alerts WHERE kind = 'escalation.unacknowledged'"
                " AND subject = %s AND resolved_at IS NULL"
            )
            wait_until(
                lambda: scalar(database_url, unacked, (late,)) == 1,
                timeout=20,
                what="escalation.unacknowledged",
            )
            all_unacked = "SELECT count(*) FROM alerts WHERE kind = 'escalation.unacknowledged'"
            assert scalar(database_url, all_unacked) == 1  # the others were taken in time
            refused = httpx.post(
                f"{url}/api/v1/escalations/{late}/complete", headers=op, json={"outcome": "x"}
            )
            assert refused.status_code == 403  # operators do not work escalations
            ack = f"{url}/api/v1/escalations/{late}/ack"
            assert httpx.post(ack, headers=patrol).is_success
            assert httpx.post(ack, headers=patrol).status_code == 409
            cancelled = httpx.post(
                f"{url}/api/v1/escalations/{late}/cancel",
                headers=sup,
                json={"reason": "the daughter is there"},
            )
            assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
            report = httpx.get(
                f"{url}/api/v1/supervision/report",
                params={"night": night.isoformat(), "site": "natt"},
                headers=sup,
            ).json()
            time.sleep(0.3)
    finally:
        patrol_topic.close()
        alerts.close()

    assert states == {
        "ok": "done_ok",
        "recheck-ok": "rechecked_ok",
        "recheck-fail": "escalated",
        "no-recheck": "escalated",
        "help": "escalated",
        "cam": "escalated",
        "missed": "missed",
        "power": "done_ok",
    }
    assert [(a["kind"], a["priority"], a["source"]) for a in queue] == [
        ("supervision.needs_help", 1, "supervision")
    ]
    reasons = {e["plan_id"]: e["reason"] for e in esc}
    assert reasons == {
        "recheck-fail": "not seen on the re-check",
        "no-recheck": "not seen, and no re-check was done",
        "help": "needs help (seen on camera)",
        "cam": "camera offline: physical visit",
        "missed": "check missed: no result by the end of its window",
        "power": "camera on battery (power cut) during the night: physical visit",
    }
    with psycopg.connect(database_url) as conn:
        timing: dict[str, float] = dict(conn.execute(ESCALATION_DELAY).fetchall())
    assert all(0 <= v <= 1.0 for v in timing.values()), timing  # on time, not early

    published = [json.loads(p) for p in patrol_topic.payloads()]
    first_time = [p for p in published if not p.get("republished")]
    assert sorted(p["plan_id"] for p in first_time) == sorted(reasons)  # each once
    assert any(p["escalation_id"] == late and p["republished"] for p in published)
    kinds = [json.loads(p)["kind"] for p in alerts.payloads()]
    assert kinds.count("supervision.check_missed") >= 1
    assert {"supervision.not_seen", "escalation.unacknowledged"} <= set(kinds)

    assert report["planned"] == 8 and report["paused_plans"] == 1
    counted = (report[k] for k in ("done_on_time", "rechecked_ok", "missed", "escalated_checks"))
    assert tuple(counted) == (2, 1, 1, 4)
    assert report["rechecks"] == 3 and report["escalations"] == 6
    assert report["escalations_completed"] == 5
    assert report["arrival_count"] == 5 and report["arrival_max_s"] is not None
    audit = scalar(database_url, "SELECT count(*) FROM audit_log WHERE subject_type = 'escalation'")
    assert audit == 5 * 3 + 2  # ack, arrive, complete for five; the late one: ack, cancel
