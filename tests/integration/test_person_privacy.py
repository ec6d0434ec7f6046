"""A person's privacy, enforced by PostgreSQL and tried from outside: the API's and the
gateway's roles cannot read the registry, every read is audited by the database, a person can
be erased with everything that names them, and a page's timer does not fill the audit log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from larmkedja.events import Kind
from tests.conftest import Broker
from tests.helpers import (
    make_event,
    publish_all,
    role_url,
    running_api,
    running_ingest,
    scalar,
    settings_for,
    token,
    wait_until,
)

pytestmark = pytest.mark.integration
NAME, PHONE = "Astrid Lindqvist", "070-555 12 34"


@pytest.mark.parametrize("role", ["larm_api", "larm_gateway", "larm_ingest", "larm_engine"])
def test_no_service_role_can_select_persons(database_url: str, role: str) -> None:
    with (
        psycopg.connect(role_url(database_url, role)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT * FROM persons")


def test_the_api_role_reads_a_person_only_through_the_audited_function(database_url: str) -> None:
    with psycopg.connect(role_url(database_url, "larm_api"), autocommit=True) as conn:
        conn.execute(
            "SELECT write_person('P-9', 'd-9', NULL, %s, 'Gatan 1', %s, NULL, 'adm', 'admin')",
            (NAME, PHONE),
        )
        row = conn.execute("SELECT name FROM read_person('P-9', 'sup', 'supervisor')").fetchone()
        assert row == (NAME,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM read_person('P-9', 'op', 'operator')")
    reads = "SELECT count(*) FROM audit_log WHERE action = 'person.read' AND actor = 'sup'"
    assert scalar(database_url, reads) == 1


def every_text(database_url: str) -> str:
    """Every text and jsonb value of every table, as one string."""
    with psycopg.connect(database_url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb')"
            " AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = 'public')"
        ).fetchall()
        parts = []
        for table, column in columns:
            rows = conn.execute(f'SELECT "{column}"::text FROM "{table}"').fetchall()  # noqa: S608
            parts += [str(r[0]) for r in rows if r[0] is not None]
    return "\n".join(parts)


def test_erasure_removes_the_person_and_what_names_them(database_url: str, broker: Broker) -> None:
    s = settings_for(database_url, broker.host, broker.port)
    with running_ingest(s), running_api(s) as url:
        admin, operator = token(s, "admin"), token(s, "operator")
        person = {"device_id": "d-astrid", "name": NAME, "address": "Storgatan 3", "phone": PHONE}
        assert httpx.put(f"{url}/api/v1/persons/P-1", headers=admin, json=person).status_code == 200
        press = make_event("d-astrid", Kind.ALARM_BUTTON)
        publish_all(broker.host, broker.port, [(press.topic("solna"), press.to_json())])
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM alarms") == 1, timeout=10)
        alarm = scalar(database_url, "SELECT alarm_id::text FROM alarms")
        base = f"{url}/api/v1/alarms/{alarm}"
        httpx.post(f"{base}/answer", headers=operator)
        httpx.post(f"{base}/calls", headers=operator, json={"contact": PHONE, "reached": True})
        httpx.post(f"{base}/notes", headers=operator, json={"text": f"{NAME} fell"})
        httpx.post(f"{base}/escalate", headers=operator, json={"reason": f"{NAME}, hall"})
        assert NAME in every_text(database_url)

        assert httpx.delete(f"{url}/api/v1/persons/P-1", headers=operator).status_code == 403
        assert httpx.delete(f"{url}/api/v1/persons/P-1", headers=admin).status_code == 204
        assert httpx.get(f"{url}/api/v1/persons/P-1", headers=admin).status_code == 404
        assert httpx.delete(f"{url}/api/v1/persons/P-1", headers=admin).status_code == 404
        left = every_text(database_url)
        assert NAME not in left and PHONE not in left and "Storgatan" not in left
        erased = scalar(
            database_url,
            "SELECT count(*) FROM audit_log WHERE action = 'person.erased' AND subject_id = 'P-1'",
        )
        assert erased == 2  # the erasure, and the attempt on no one
        case = httpx.get(base, headers=operator).json()["case"]
        assert [c["action"] for c in case][:3] == ["raised", "answered", "call"]  # steps stay


def test_person_erase_from_the_command_line(database_url: str) -> None:
    with psycopg.connect(role_url(database_url, "larm_api"), autocommit=True) as conn:
        conn.execute(
            "SELECT write_person('P-7', 'd-7', NULL, %s, 'Gatan 1', NULL, NULL, 'adm', 'admin')",
            (NAME,),
        )
    exe = str(Path(sys.executable).with_name("larmkedja"))
    env = {"LARM_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    run = [exe, "--log-level", "WARNING", "person", "erase", "--person", "P-7"]
    first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 1
    assert scalar(database_url, "SELECT count(*) FROM persons") == 0
    actors = "SELECT count(*) FROM audit_log WHERE action = 'person.erased' AND actor = 'cli'"
    assert scalar(database_url, actors) == 2


def test_a_pages_poll_is_not_audited_and_an_explicit_read_is(
    database_url: str, broker: Broker
) -> None:
    s = settings_for(database_url, broker.host, broker.port)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at)"
            " VALUES ('d-poll', 'solna', now(), now(), now() + '1 h')"
        )
    with running_api(s) as url:
        operator = token(s, "operator")
        for _ in range(5):
            got = httpx.get(f"{url}/api/v1/devices/d-poll?poll=true", headers=operator)
            assert got.status_code == 200
        httpx.get(f"{url}/api/v1/devices/d-poll", headers=operator)
    reads = "SELECT count(*) FROM audit_log WHERE action = 'device.read'"
    assert scalar(database_url, reads) == 1
