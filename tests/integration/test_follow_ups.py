"""A person marked "follow up" (issue 19), from outside: an operator marks the person of an
alarm they handle, the supervisor anyone; the hand-over lists every person marked with who
marked them (each read audited) until the mark is cleared; the attacks: other roles, another
person's id, blank and huge reasons; the reason never reaches the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from larmkedja.settings import Settings
from tests.conftest import Broker
from tests.helpers import running_api, scalar, settings_for, token

pytestmark = pytest.mark.integration
REASON = "Föll i natt utan skada; ring dottern i morgon"


def person(name: str, site: str, device: str) -> dict[str, Any]:
    return {"site": site, "name": name, "address": "Storgatan 1", "devices": [device]}


@pytest.fixture
def api(database_url: str, broker: Broker) -> Iterator[tuple[Settings, str]]:
    s = settings_for(database_url, broker.host, broker.port)
    with running_api(s) as url:
        admin = token(s, "admin")
        for ref, body in (
            ("P-1", person("Astrid Lindqvist", "solna", "d-1")),
            ("P-2", person("Bertil Ek", "solna", "d-2")),
            ("P-3", person("Cecilia Ström", "norr", "d-3")),
        ):
            assert httpx.put(f"{url}/api/v1/persons/{ref}", headers=admin, json=body).is_success
        with psycopg.connect(database_url) as conn:  # an answered alarm of P-1's device only
            conn.execute(
                "INSERT INTO alarms (site, device_id, kind, priority, state, raised_at,"
                " last_event_at, answered_at, answered_by, handled_by) VALUES ('solna', 'd-1',"
                " 'alarm.fall', 1, 'answered', now(), now(), now(), 'op-anna', 'op-anna')"
            )
        yield s, url


def mark(url: str, ref: str, headers: dict[str, str], reason: Any = REASON) -> httpx.Response:
    return httpx.put(
        f"{url}/api/v1/persons/{ref}/follow-up", headers=headers, json={"reason": reason}
    )


def test_a_marked_person_is_on_the_handover_until_the_mark_is_cleared(
    api: tuple[Settings, str], database_url: str
) -> None:
    settings, url = api
    anna = token(settings, "operator", "op-anna")
    berit = token(settings, "operator", "op-berit")  # the next shift
    boss = token(settings, "supervisor", "sup-karin")
    marked = mark(url, "P-1", anna)
    assert marked.status_code == 200, marked.text
    assert marked.json()["marked_by"] == "op-anna" and marked.json()["reason"] == REASON
    assert mark(url, "P-3", boss, "Ny rollator, ring och fråga").status_code == 200

    got = httpx.get(f"{url}/api/v1/handover", headers=berit).json()["follow_ups"]
    assert [(f["person_ref"], f["name"], f["marked_by"], f["marked_role"]) for f in got] == [
        ("P-1", "Astrid Lindqvist", "op-anna", "operator"),
        ("P-3", "Cecilia Ström", "sup-karin", "supervisor"),
    ]
    solna = httpx.get(f"{url}/api/v1/handover?site=solna", headers=berit).json()
    assert [f["person_ref"] for f in solna["follow_ups"]] == ["P-1"]
    reads = (
        "SELECT count(*) FROM audit_log WHERE action = 'person.read' AND actor = 'op-berit'"
        " AND details->>'via' = 'follow_up'"
    )
    assert scalar(database_url, reads) == 3  # each person listed, each time

    alarm_id = scalar(database_url, "SELECT alarm_id FROM alarms")
    case = httpx.get(f"{url}/api/v1/alarms/{alarm_id}", headers=anna).json()
    assert case["follow_up"]["reason"] == REASON

    cleared = httpx.delete(f"{url}/api/v1/persons/P-1/follow-up", headers=berit)
    assert cleared.status_code == 204
    assert httpx.delete(f"{url}/api/v1/persons/P-1/follow-up", headers=berit).status_code == 404
    after = httpx.get(f"{url}/api/v1/handover", headers=berit).json()["follow_ups"]
    assert [f["person_ref"] for f in after] == ["P-3"]
    assert httpx.get(f"{url}/api/v1/alarms/{alarm_id}", headers=anna).json()["follow_up"] is None
    done = (
        "SELECT details->>'marked_by' FROM audit_log WHERE action = 'person.follow_up_cleared'"
        " AND actor = 'op-berit' AND (details->>'found')::boolean"
    )
    assert scalar(database_url, done) == "op-anna"
    # the reason is the person's: never in the audit log, gone with the person
    leaked = "SELECT count(*) FROM audit_log WHERE details::text LIKE '%%dottern%%'"
    assert scalar(database_url, leaked) == 0
    assert httpx.delete(f"{url}/api/v1/persons/P-3", headers=token(settings, "admin")).is_success
    assert scalar(database_url, "SELECT count(*) FROM person_follow_ups") == 0


def test_marking_attacked_from_outside(api: tuple[Settings, str], database_url: str) -> None:
    settings, url = api
    anna = token(settings, "operator", "op-anna")
    # another person's id: P-2 has no alarm the operator sees; P-9 does not exist. One answer.
    other, nobody = mark(url, "P-2", anna), mark(url, "P-9", anna)
    assert other.status_code == nobody.status_code == 404
    assert other.json() == nobody.json()
    refused = (
        "SELECT count(*) FROM audit_log WHERE action = 'person.follow_up'"
        " AND NOT (details->>'done')::boolean"
    )
    assert scalar(database_url, refused) == 2  # a guess is in the audit log
    for role in ("patrol", "admin"):
        assert mark(url, "P-1", token(settings, role)).status_code == 403
        gone = httpx.delete(f"{url}/api/v1/persons/P-1/follow-up", headers=token(settings, role))
        assert gone.status_code == 403
    for reason in ("", "   ", "\n\t", "x" * 301, "a\x00b", None, 42):
        assert mark(url, "P-1", anna, reason).status_code == 422, repr(reason)
    huge = httpx.put(
        f"{url}/api/v1/persons/P-1/follow-up",
        headers={**anna, "Content-Type": "application/json"},
        content=b'{"reason": "' + b"x" * 2_000_000 + b'"}',
    )
    assert huge.status_code in (413, 422)
    for ref in ("../P-1", "P 1", "x" * 65):
        assert mark(url, ref, anna).status_code in (404, 422)
    assert scalar(database_url, "SELECT count(*) FROM person_follow_ups") == 0
    # and what was refused disturbed nothing: the operator can still mark their own person
    assert mark(url, "P-1", anna).status_code == 200
    assert scalar(database_url, "SELECT count(*) FROM person_follow_ups") == 1
