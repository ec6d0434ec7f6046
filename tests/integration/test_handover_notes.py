"""Hand-over notes from home care to the night patrol on the real stack (issue 19), in seconds:
a note left in the day is on the patrol's list of its site, acknowledged (audited) or, left
unacknowledged past its time, `handover.unacknowledged` to the supervisor, resolved when it is
acknowledged; the note and its acknowledgement are in the person's next case. And the routes
attacked: other roles, guessed ids, floods, huge and blank text."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

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
# Every note is left "after the time" (00:00) and so due 3 s after it was left.
FAST = {"handover_ack_by": "00:00", "handover_ack_late_s": 3.0, "engine_tick_s": 0.1}
ASTRID = {
    "site": "natt",
    "name": "Astrid Lindqvist",
    "address": "Storgatan 3",
    "devices": ["d-astrid"],
    "access": [{"kind": "key_safe", "ref": "KS-1", "where": "by the door"}],
}


@pytest.fixture
def stack(database_url: str, broker: Broker) -> Iterator[tuple[Settings, str]]:
    s = settings_for(database_url, broker.host, broker.port, **FAST)
    with running_ingest(s), running_engine(s), running_api(s) as url:
        admin = token(s, "admin")
        for ref, body in (("P-1", ASTRID), ("P-2", {**ASTRID, "name": "Bo", "devices": []})):
            assert httpx.put(f"{url}/api/v1/persons/{ref}", headers=admin, json=body).is_success
        yield s, url


def handover_alerts(sub: Subscriber) -> list[dict[str, Any]]:
    return [m for m in map(json.loads, sub.payloads()) if m["kind"] == "handover.unacknowledged"]


def test_a_note_unacknowledged_past_its_time_alerts_the_supervisor_until_acknowledged(
    stack: tuple[Settings, str], broker: Broker, database_url: str
) -> None:
    s, url = stack
    day, patrol = token(s, "supervisor", "team-norr"), token(s, "patrol", "natt-2")
    alerts = Subscriber(broker.host, broker.port, "larm/v1/natt/alerts")
    try:
        left = httpx.post(
            f"{url}/api/v1/persons/P-1/handover-notes",
            headers=day,
            json={"text": "Extra visit at 23: new medication, may be dizzy"},
        )
        assert left.status_code == 201, left.text
        note = left.json()
        quick = httpx.post(
            f"{url}/api/v1/persons/P-2/handover-notes", headers=day, json={"text": "Key moved"}
        ).json()

        # the patrol's shift starts: every note of its site, with where to go
        shown = httpx.get(f"{url}/api/v1/handover-notes?site=natt", headers=patrol).json()
        assert [(n["name"], n["text"]) for n in shown] == [
            ("Astrid Lindqvist", "Extra visit at 23: new medication, may be dizzy"),
            ("Bo", "Key moved"),
        ]
        assert httpx.get(f"{url}/api/v1/handover-notes?site=other", headers=patrol).json() == []
        ack = f"{url}/api/v1/handover-notes/{quick['note_id']}/ack"
        assert httpx.post(ack, headers=patrol).json()["acknowledged_by"] == "natt-2"

        # the other one is not acknowledged in time: the supervisor is told, once
        wait_until(lambda: bool(handover_alerts(alerts)), timeout=8, what="the alert")
        [raised] = handover_alerts(alerts)
        assert raised["subject"] == f"handover:{note['note_id']}"
        assert raised["state"] == "active" and raised["severity"] == "critical"
        assert "medication" not in json.dumps(raised)  # ids and times, never the text
        time.sleep(0.5)
        assert len(handover_alerts(alerts)) == 1

        ack = f"{url}/api/v1/handover-notes/{note['note_id']}/ack"
        assert httpx.post(ack, headers=patrol).status_code == 200
        assert httpx.post(ack, headers=patrol).status_code == 409
        wait_until(lambda: len(handover_alerts(alerts)) == 2, timeout=5, what="the resolution")
        assert handover_alerts(alerts)[-1]["state"] == "resolved"
    finally:
        alerts.close()
    alerted = "SELECT count(*) FROM alerts WHERE kind = 'handover.unacknowledged'"
    assert scalar(database_url, alerted) == 1  # the one acknowledged in time never alerted
    acks = "SELECT count(*) FROM audit_log WHERE action = 'handover_note.ack' AND actor = 'natt-2'"
    assert scalar(database_url, acks) == 2
    via = "SELECT count(*) FROM audit_log WHERE action = 'person.read' AND details ? 'via'"
    assert scalar(database_url, via) == 2  # each person the list showed


def test_the_note_and_its_acknowledgement_are_in_the_persons_next_case(
    stack: tuple[Settings, str], broker: Broker, database_url: str
) -> None:
    s, url = stack
    op, patrol = token(s, "operator"), token(s, "patrol", "natt-1")
    note = httpx.post(
        f"{url}/api/v1/persons/P-1/handover-notes", headers=op, json={"text": "Watch the stairs"}
    ).json()
    httpx.post(f"{url}/api/v1/handover-notes/{note['note_id']}/ack", headers=patrol)
    press = make_event("d-astrid", Kind.ALARM_FALL)
    publish_all(broker.host, broker.port, [(press.topic("natt"), press.to_json())])
    wait_until(lambda: scalar(database_url, "SELECT count(*) FROM alarms") == 1, timeout=5)
    alarm = scalar(database_url, "SELECT alarm_id::text FROM alarms")
    case = httpx.get(f"{url}/api/v1/alarms/{alarm}", headers=op).json()
    [shown] = case["handover_notes"]
    assert (shown["text"], shown["acknowledged_by"]) == ("Watch the stairs", "natt-1")


def test_the_note_routes_hold_against_other_roles_guesses_floods_and_bad_text(
    stack: tuple[Settings, str], database_url: str
) -> None:
    s, url = stack
    op, patrol, admin = token(s, "operator"), token(s, "patrol"), token(s, "admin")
    leave = f"{url}/api/v1/persons/P-1/handover-notes"
    assert httpx.post(leave, headers=patrol, json={"text": "x"}).status_code == 403
    assert httpx.post(leave, headers=admin, json={"text": "x"}).status_code == 403
    assert httpx.get(f"{url}/api/v1/handover-notes", headers=op).status_code == 403
    for text in ("", "   ", "a\u0000b", "x" * 1001):
        got = httpx.post(leave, headers=op, json={"text": text})
        assert got.status_code == 422 and "Traceback" not in got.text
    assert httpx.post(leave, headers=op, json={"text": "y" * 300_000}).status_code == 413
    guess = f"{url}/api/v1/persons/P-{uuid.uuid4().hex[:6]}/handover-notes"
    assert httpx.post(guess, headers=op, json={"text": "x"}).status_code == 404
    no_site = {"name": "Utan Område", "address": "Gatan 5"}
    assert httpx.put(f"{url}/api/v1/persons/P-3", headers=admin, json=no_site).is_success
    refused = httpx.post(f"{url}/api/v1/persons/P-3/handover-notes", headers=op, json={"text": "x"})
    assert refused.status_code == 409
    flood = [
        httpx.post(leave, headers=op, json={"text": f"note {n}"}).status_code for n in range(25)
    ]
    assert flood == [201] * 20 + [409] * 5  # LARM_HANDOVER_NOTES_MAX for the night
    for note_id in (uuid.uuid4(), "not-a-uuid"):
        got = httpx.post(f"{url}/api/v1/handover-notes/{note_id}/ack", headers=patrol)
        assert got.status_code in (404, 422)
    # nothing else disturbed: another person's notes can still be left and are listed
    other = httpx.post(f"{url}/api/v1/persons/P-2/handover-notes", headers=op, json={"text": "ok"})
    assert other.status_code == 201
    listed = httpx.get(f"{url}/api/v1/handover-notes", headers=patrol).json()
    assert len(listed) == 21 and {n["person_ref"] for n in listed} == {"P-1", "P-2"}
    with psycopg.connect(database_url) as conn:
        audit = conn.execute("SELECT details::text FROM audit_log").fetchall()
    assert not any("note 1" in row[0] for row in audit)
