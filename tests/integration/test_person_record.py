"""The person behind an alarm (issue 19, contract §6) on the real stack: the whole record, who
may see it when (the operator through the alarm they handle, the patrol through its live
escalation), every read audited by the database, an alarm without a recorded way in flagged,
and the routes attacked from outside: other roles, another person's ids, huge, blank and
guessed input, with nothing else disturbed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from larmkedja.events import Kind
from larmkedja.settings import Settings
from tests.conftest import Broker
from tests.helpers import (
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
ASTRID: dict[str, Any] = {
    "site": "solna",
    "name": "Astrid Lindqvist",
    "address": "Storgatan 3, 171 41 Solna",
    "area_type": "rural",
    "language": "sv",
    "notes": "Diabetes. Hard of hearing: ring twice.",
    "home_care": {"provider": "Solna hemtjänst", "team": "Team Norr"},
    "devices": ["d-astrid", "d-astrid-fall"],
    "plans": ["plan-astrid"],
    "access": [
        {"kind": "key_safe", "ref": "KS-4711", "where": "left of the front door"},
        {"kind": "patrol_key", "ref": "N-17", "where": "night patrol key cabinet"},
    ],
    "contacts": [
        {
            "name": "Eva Lindqvist",
            "relation": "daughter",
            "phone": "070-555 12 34",
            "call_window": "08:00-21:00",
        },
        {
            "name": "Nils Berg",
            "relation": "neighbour",
            "phone": "+46 8 123 45",
            "call_window": None,
        },
    ],
}
PERSON_READS = "SELECT count(*) FROM audit_log WHERE action = 'person.read' AND subject_id = %s"


@pytest.fixture
def stack(database_url: str, broker: Broker) -> Iterator[tuple[Settings, str]]:
    s = settings_for(database_url, broker.host, broker.port)
    with running_ingest(s), running_api(s) as url:
        yield s, url


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def press(broker: Broker, database_url: str, device: str) -> str:
    event = make_event(device, Kind.ALARM_BUTTON)
    publish_all(broker.host, broker.port, [(event.topic("solna"), event.to_json())])
    sql = "SELECT alarm_id::text FROM alarms WHERE device_id = %s AND state <> 'resolved'"
    wait_until(lambda: scalar(database_url, sql, (device,)) is not None, timeout=10)
    return str(scalar(database_url, sql, (device,)))


def test_the_record_is_written_whole_and_read_back_with_its_absences(
    stack: tuple[Settings, str], database_url: str
) -> None:
    s, url = stack
    admin, sup = token(s, "admin", "adm-1"), token(s, "supervisor", "sup-1")
    put = httpx.put(f"{url}/api/v1/persons/P-1", headers=admin, json=ASTRID)
    assert put.status_code == 200, put.text
    away = {
        "from": "2026-12-01T10:00:00+01:00",
        "until": "2026-12-08T10:00:00+01:00",
        "reason": "in hospital",
    }
    absence = httpx.put(f"{url}/api/v1/persons/P-1/absences/a-1", headers=sup, json=away)
    assert absence.status_code == 200, absence.text
    assert when(absence.json()["from"]) == datetime(2026, 12, 1, 9, tzinfo=UTC)
    got = httpx.get(f"{url}/api/v1/persons/P-1", headers=sup).json()
    for field in (
        "site",
        "name",
        "address",
        "area_type",
        "language",
        "notes",
        "devices",
        "plans",
        "access",
        "home_care",
    ):
        assert got[field] == ASTRID[field], field
    assert got["contacts"] == ASTRID["contacts"]  # in call order
    assert [a["absence_id"] for a in got["absences"]] == ["a-1"]
    assert got["absences"][0]["reason"] == "in hospital"
    assert (got["person_id"], got["device_id"], got["plan_id"]) == (
        "P-1",
        "d-astrid",
        "plan-astrid",
    )
    assert scalar(database_url, PERSON_READS, ("P-1",)) == 1
    writes = "SELECT details FROM audit_log WHERE action IN ('person.write', 'person.absence')"
    with psycopg.connect(database_url) as conn:
        details = [r[0] for r in conn.execute(writes)]
    assert "hospital" not in str(details)  # the audit keeps that it happened, not the reason


def test_old_clients_keep_working_and_a_device_has_one_person(
    stack: tuple[Settings, str], database_url: str
) -> None:
    s, url = stack
    admin, sup = token(s, "admin"), token(s, "supervisor")
    old = {"device_id": "d-old", "name": "Karl Karlsson", "address": "Gatan 2"}
    assert httpx.put(f"{url}/api/v1/persons/P-old", headers=admin, json=old).status_code == 200
    got = httpx.get(f"{url}/api/v1/persons/P-old", headers=sup).json()
    assert (got["devices"], got["device_id"], got["area_type"], got["access"]) == (
        ["d-old"],
        "d-old",
        "town",
        [],
    )
    claim = {"name": "Someone Else", "address": "Gatan 3", "devices": ["d-new", "d-old"]}
    taken = httpx.put(f"{url}/api/v1/persons/P-other", headers=admin, json=claim)
    assert taken.status_code == 409 and "Traceback" not in taken.text
    assert httpx.get(f"{url}/api/v1/persons/P-other", headers=sup).status_code == 404
    assert httpx.get(f"{url}/api/v1/persons/P-old", headers=sup).json()["devices"] == ["d-old"]
    moved = {**old, "device_id": None, "devices": ["d-old-2"]}
    assert httpx.put(f"{url}/api/v1/persons/P-old", headers=admin, json=moved).status_code == 200
    assert (
        scalar(database_url, "SELECT person_ref FROM person_devices WHERE device_id = 'd-old'")
        is None
    )


def test_the_operator_sees_the_person_of_the_alarm_they_handle_and_the_patrol_on_its_escalation(
    stack: tuple[Settings, str], broker: Broker, database_url: str
) -> None:
    s, url = stack
    admin, op, patrol = token(s, "admin"), token(s, "operator", "op-eva"), token(s, "patrol")
    assert httpx.put(f"{url}/api/v1/persons/P-1", headers=admin, json=ASTRID).status_code == 200
    assert httpx.get(f"{url}/api/v1/persons/P-1", headers=op).status_code == 403
    alarm = press(broker, database_url, "d-astrid-fall")
    case = httpx.get(f"{url}/api/v1/alarms/{alarm}", headers=op).json()
    person = case["person"]
    assert (person["name"], person["address"]) == (ASTRID["name"], ASTRID["address"])
    assert [c["name"] for c in person["contacts"]] == ["Eva Lindqvist", "Nils Berg"]
    assert [a["kind"] for a in person["access"]] == ["key_safe", "patrol_key"]
    audit = "SELECT actor, details->>'alarm_id' FROM audit_log WHERE action = 'person.read'"
    with psycopg.connect(database_url) as conn:
        assert conn.execute(audit).fetchall() == [("op-eva", alarm)]

    # the patrol: nothing until it has a live escalation of this alarm, nothing after
    assert httpx.get(f"{url}/api/v1/alarms/{alarm}", headers=patrol).json()["person"] is None
    base = f"{url}/api/v1/alarms/{alarm}"
    httpx.post(f"{base}/answer", headers=op).raise_for_status()
    sent = httpx.post(f"{base}/escalate", headers=op, json={"reason": "fallen"}).json()
    escalation = sent["escalation_id"]
    assert httpx.get(base, headers=patrol).json()["person"]["name"] == ASTRID["name"]
    visit = httpx.get(f"{url}/api/v1/escalations/{escalation}/visit", headers=patrol).json()
    assert visit["person"]["access"][0]["ref"] == "KS-4711"
    assert [c["action"] for c in visit["case"]][-1] == "escalated"
    assert httpx.get(f"{url}/api/v1/escalations/{escalation}/visit", headers=op).status_code == 403
    done = httpx.post(
        f"{url}/api/v1/escalations/{escalation}/complete",
        headers=patrol,
        json={"outcome": "helped up"},
    )
    assert done.status_code == 200
    assert httpx.get(base, headers=patrol).json()["person"] is None
    after = httpx.get(f"{url}/api/v1/escalations/{escalation}/visit", headers=patrol).json()
    assert after["person"] is None
    # the operator still sees it to close the case; a device nobody is linked to has none
    assert httpx.get(base, headers=op).json()["person"]["name"] == ASTRID["name"]
    stranger = press(broker, database_url, "d-nobody")
    assert httpx.get(f"{url}/api/v1/alarms/{stranger}", headers=op).json()["person"] is None
    reads_by_patrol = (
        "SELECT count(*) FROM audit_log WHERE action = 'person.read' AND role = 'patrol'"
    )
    assert scalar(database_url, reads_by_patrol) == 2  # the two reads it was shown, no more


def test_an_alarm_without_a_recorded_way_in_is_flagged_in_the_queue_and_for_the_patrol(
    stack: tuple[Settings, str], broker: Broker, database_url: str
) -> None:
    s, url = stack
    admin, op, patrol = token(s, "admin"), token(s, "operator"), token(s, "patrol")
    no_way_in = {**ASTRID, "devices": ["d-locked"], "plans": [], "access": []}
    assert httpx.put(f"{url}/api/v1/persons/P-2", headers=admin, json=no_way_in).is_success
    assert httpx.put(f"{url}/api/v1/persons/P-1", headers=admin, json=ASTRID).is_success
    locked, open_ = press(broker, database_url, "d-locked"), press(broker, database_url, "d-astrid")
    queue = {a["alarm_id"]: a for a in httpx.get(f"{url}/api/v1/alarms", headers=op).json()}
    assert (queue[locked]["no_access"], queue[open_]["no_access"]) == (True, False)
    assert scalar(database_url, "SELECT count(*) FROM audit_log WHERE action = 'person.read'") == 0
    httpx.post(f"{url}/api/v1/alarms/{locked}/escalate", headers=op, json={"reason": "no answer"})
    [task] = httpx.get(f"{url}/api/v1/escalations", headers=patrol).json()
    assert (task["no_access"], task["person_ref"]) == (True, "P-2")


def test_the_person_routes_hold_against_other_roles_ids_and_input(
    stack: tuple[Settings, str], database_url: str
) -> None:
    s, url = stack
    admin, sup = token(s, "admin"), token(s, "supervisor")
    op, patrol = token(s, "operator"), token(s, "patrol")
    assert httpx.put(f"{url}/api/v1/persons/P-1", headers=admin, json=ASTRID).is_success
    before = httpx.get(f"{url}/api/v1/persons/P-1", headers=sup).json()
    away = {"from": "2026-12-01T10:00:00+01:00", "until": "2026-12-02T10:00:00+01:00"}
    person, absence = f"{url}/api/v1/persons/P-1", f"{url}/api/v1/persons/P-1/absences/a-1"

    for headers in (op, patrol, sup):
        assert httpx.put(person, headers=headers, json=ASTRID).status_code == 403
        assert httpx.delete(person, headers=headers).status_code == 403
    for headers in (op, patrol):
        assert httpx.put(absence, headers=headers, json=away).status_code == 403
    bad = [
        {**ASTRID, "name": "   "},
        {**ASTRID, "name": "x\u0000y"},
        {**ASTRID, "name": "x" * 201},
        {**ASTRID, "area_type": "city"},
        {**ASTRID, "devices": ["d-1", "d-1"]},
        {**ASTRID, "devices": [f"d-{n}" for n in range(21)]},
        {**ASTRID, "access": [{"kind": "door_code", "ref": "1234"}]},
        {**ASTRID, "contacts": [{"name": "Eva", "phone": "call me"}]},
        {**ASTRID, "contacts": [{"name": "Eva", "phone": "070-1", "call_window": "8-21"}]},
        {**ASTRID, "contacts": [{"name": "Eva", "phone": "0701"}] * 21},
    ]
    for body in bad:
        got = httpx.put(person, headers=admin, json=body)
        assert got.status_code == 422, (body, got.status_code)
        assert "Traceback" not in got.text
    huge = {**ASTRID, "notes": "x" * 300_000}
    assert httpx.put(person, headers=admin, json=huge).status_code == 413
    reversed_ = {"from": away["until"], "until": away["from"]}
    assert httpx.put(absence, headers=sup, json=reversed_).status_code == 409
    assert httpx.put(absence, headers=sup, json={**away, "reason": " "}).status_code == 422
    for n in range(100):
        ok = httpx.put(f"{person}/absences/n-{n}", headers=sup, json=away)
        assert ok.status_code == 200
    assert httpx.put(f"{person}/absences/one-too-many", headers=sup, json=away).status_code == 409
    assert httpx.put(f"{person}/absences/n-0", headers=sup, json=away).status_code == 200  # replace

    # another person's absence id is another absence; guessing a person is a 404, and audited
    assert httpx.put(
        f"{url}/api/v1/persons/P-2", headers=admin, json={"name": "Bo", "address": "Gatan 9"}
    ).is_success
    assert (
        httpx.put(
            f"{url}/api/v1/persons/P-2/absences/n-1",
            headers=sup,
            json={**away, "until": "2027-01-01T00:00:00Z"},
        ).status_code
        == 200
    )
    guess = f"{url}/api/v1/persons/P-{uuid.uuid4().hex[:8]}"
    assert httpx.get(guess, headers=sup).status_code == 404
    assert httpx.put(f"{guess}/absences/a-1", headers=sup, json=away).status_code == 404
    assert httpx.get(f"{url}/api/v1/persons/..%2F..%2Fetc", headers=sup).status_code in (404, 422)
    not_found = (
        "SELECT count(*) FROM audit_log"
        " WHERE action = 'person.read' AND details->>'found' = 'false'"
    )
    assert scalar(database_url, not_found) == 1

    after = httpx.get(f"{url}/api/v1/persons/P-1", headers=sup).json()
    assert {k: v for k, v in after.items() if k != "absences"} == {
        k: v for k, v in before.items() if k != "absences"
    }
    assert len(after["absences"]) == 100
    assert [when(a["until"]) for a in after["absences"] if a["absence_id"] == "n-1"] == [
        datetime(2026, 12, 2, 9, tzinfo=UTC)
    ]


def test_absences_that_ended_long_ago_make_room_for_new_ones(
    stack: tuple[Settings, str], database_url: str
) -> None:
    """A person in respite care every week must not run out of absences after two years."""
    s, url = stack
    admin, sup = token(s, "admin"), token(s, "supervisor")
    assert httpx.put(f"{url}/api/v1/persons/P-1", headers=admin, json=ASTRID).is_success
    old = {"from": "2024-01-01T08:00:00+01:00", "until": "2024-01-08T08:00:00+01:00"}
    for n in range(100):
        assert httpx.put(
            f"{url}/api/v1/persons/P-1/absences/w-{n}", headers=sup, json=old
        ).is_success
    new = {"from": "2030-01-01T08:00:00+01:00", "until": "2030-01-08T08:00:00+01:00"}
    got = httpx.put(f"{url}/api/v1/persons/P-1/absences/next", headers=sup, json=new)
    assert got.status_code == 200, got.text
    left = httpx.get(f"{url}/api/v1/persons/P-1", headers=sup).json()["absences"]
    assert [a["absence_id"] for a in left] == ["next"]
