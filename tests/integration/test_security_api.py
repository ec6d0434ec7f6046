"""The API's doors: every route against every role, failed sign-ins limited, no CORS, headers,
the audit log append-only for the services, person reads audited, retention."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute

from api.app import create_app
from api.auth import ROLES, Permission, Role
from devstack.postgres import Postgres
from tests.conftest import Broker
from tests.helpers import running_api, scalar, settings_for, token

pytestmark = pytest.mark.integration

PATH_VALUES: dict[str, Callable[[], str]] = {
    "alarm_id": lambda: str(uuid.uuid4()),
    "escalation_id": lambda: str(uuid.uuid4()),
    "incident_id": lambda: str(uuid.uuid4()),
    "device_id": lambda: "d-1",
    "plan_id": lambda: "p-1",
    "person_ref": lambda: "P-1",
    "absence_id": lambda: "a-1",
    "note_id": lambda: str(uuid.uuid4()),
}
BODIES: dict[str, dict[str, Any]] = {
    "escalate": {"reason": "test"},
    "resolve": {"outcome": "test"},
    "notes": {"text": "test"},
    "calls": {"contact": "test", "reached": False},
    "complete": {"outcome": "test"},
    "cancel": {"reason": "test"},
    "plans": {"device_id": "cam-1", "site": "s", "checks": ["22:00"], "window_minutes": 15},
    "absences": {"from": "2026-01-01T08:00:00+01:00", "until": "2026-01-02T08:00:00+01:00"},
    "follow-up": {"reason": "test"},
    "persons": {"name": "Test Person", "address": "Gatan 1"},
}


def permission_of(route: APIRoute) -> Permission | None:
    """The permission a route requires, found in its dependencies at any depth (a route may
    take its principal through a dependency of its own, as the report routes do)."""
    pending = list(route.dependant.dependencies)
    while pending:
        dep = pending.pop(0)
        permission = getattr(dep.call, "permission", None)
        if permission is not None:
            return Permission(permission)
        pending.extend(dep.dependencies)
    return None


def _flatten(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router
        if inner is not None:
            yield from _flatten(list(inner.routes))
        else:
            yield route


def api_routes() -> list[tuple[str, str, Permission | None]]:
    app = create_app(settings=settings_for("postgresql://x@127.0.0.1:1/x", "127.0.0.1", 1))
    found = []
    for route in _flatten(list(app.routes)):
        if isinstance(route, APIRoute) and route.path.startswith("/api/v1"):
            for method in route.methods or ():
                found.append((method, route.path, permission_of(route)))
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m[1]](), path)


def body_for(path: str) -> dict[str, Any] | None:
    for key, body in BODIES.items():
        if key in path:
            return body
    return None


@pytest.fixture
def api(database_url: str, broker: Broker) -> Iterator[tuple[Any, str]]:
    s = settings_for(database_url, broker.host, broker.port, auth_failures_per_minute=5)
    with running_api(s) as url:
        yield s, url


def test_every_route_is_guarded_by_the_role_matrix(api: tuple[Any, str]) -> None:
    settings, url = api
    tokens = {role: token(settings, role.value) for role in Role}
    routes = api_routes()
    assert len(routes) >= 19
    problems = []
    with httpx.Client(base_url=url) as client:
        for method, path, permission in routes:
            target, body = concrete(path), body_for(path)
            anonymous = client.request(method, target, json=body)
            if anonymous.status_code != 401:
                problems.append(f"{method} {path}: {anonymous.status_code} without a token")
            for role, headers in tokens.items():
                got = client.request(method, target, json=body, headers=headers).status_code
                allowed = permission is None or role in ROLES[permission]
                if allowed and got in (401, 403):
                    problems.append(f"{method} {path}: {role} refused ({got})")
                if not allowed and got != 403:
                    problems.append(f"{method} {path}: {role} got {got}, not 403")
                if got >= 500:
                    problems.append(f"{method} {path}: {role} got {got}")
    assert not problems, "\n".join(problems)
    assert all(p is not None for m, p_, p in routes if not p_.endswith("/me")), "unguarded route"


def test_failed_sign_ins_are_limited_and_never_lock_out_a_valid_token(api: tuple[Any, str]) -> None:
    """Operators behind one NAT share an address: a guesser on it must not lock them out."""
    settings, url = api
    bad = {"Authorization": "Bearer lk_guessing"}
    valid = token(settings, "operator")
    statuses = [httpx.get(f"{url}/api/v1/alarms", headers=bad).status_code for _ in range(8)]
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 3
    assert "Traceback" not in httpx.get(f"{url}/api/v1/alarms", headers=bad).text
    for _ in range(3):  # the same address, still over its limit of failures
        assert httpx.get(f"{url}/api/v1/alarms", headers=valid).status_code == 200
        assert httpx.get(f"{url}/api/v1/alarms", headers=bad).status_code == 429


def test_no_cors_and_security_headers_on_pages(api: tuple[Any, str]) -> None:
    _, url = api
    preflight = httpx.options(
        f"{url}/api/v1/alarms",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    page = httpx.get(f"{url}/ui/operator")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    missing = httpx.get(f"{url}/api/v1/nothing-here")
    assert missing.status_code == 404 and "Traceback" not in missing.text


def test_person_records_are_read_by_supervisors_only_and_every_read_is_audited(
    api: tuple[Any, str], database_url: str
) -> None:
    settings, url = api
    admin, sup, op = (token(settings, r) for r in ("admin", "supervisor", "operator"))
    person = {
        "device_id": "d-42",
        "name": "Astrid Andersson",
        "address": "Storgatan 1, Solna",
        "phone": "070-000 00 00",
        "access_notes": "key box 4711",
    }
    assert httpx.put(f"{url}/api/v1/persons/P-4711", headers=admin, json=person).is_success
    assert httpx.get(f"{url}/api/v1/persons/P-4711", headers=op).status_code == 403
    read = httpx.get(f"{url}/api/v1/persons/P-4711", headers=sup)
    assert read.json()["name"] == "Astrid Andersson"
    reads = "SELECT count(*) FROM audit_log WHERE action = 'person.read' AND subject_id = %s"
    assert scalar(database_url, reads, ("P-4711",)) == 1
    # nothing about the person anywhere but the registry
    with psycopg.connect(database_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public'"
                " AND column_name IN ('address', 'phone', 'access_notes')"
            )
        ]
    assert set(tables) == {"persons"}


def app_role_url(postgres: Postgres, database_url: str) -> str:
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as conn:
        conn.execute("ALTER ROLE larm_app PASSWORD 'app-test'")
    return re.sub(r"//[^@]+@", "//larm_app:app-test@", database_url)


def test_the_services_role_cannot_change_the_audit_log(
    postgres: Postgres, database_url: str
) -> None:
    app_url = app_role_url(postgres, database_url)
    with psycopg.connect(app_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO audit_log (actor, role, action, subject_type, subject_id)"
            " VALUES ('a', 'operator', 'alarm.answer', 'alarm', 'x')"
        )
        for statement in (
            "UPDATE audit_log SET actor = 'b'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "UPDATE larm_config SET value = '0' WHERE key = 'audit_retention_days'",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.encode())
    # even the owner cannot edit it by accident (a trigger), only the retention job removes
    with psycopg.connect(database_url, autocommit=True) as conn, pytest.raises(psycopg.Error):
        conn.execute("UPDATE audit_log SET actor = 'b'")


def test_retention_drops_old_event_chunks_and_old_audit_but_keeps_the_rest(
    postgres: Postgres, database_url: str
) -> None:
    old = datetime.now(UTC) - timedelta(days=200)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for at in (old, datetime.now(UTC)):
            conn.execute(
                "INSERT INTO events (received_at, event_id, site, device_id, kind, device_ts)"
                " VALUES (%s, %s, 's', 'd', 'heartbeat', %s)",
                (at, uuid.uuid4(), at),
            )
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(
            "INSERT INTO audit_log (at, actor, role, action, subject_type, subject_id) VALUES"
            " (now() - interval '2000 days', 'a', 'r', 'x', 't', '1'),"
            " (now(), 'a', 'r', 'x', 't', '2')"
        )
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    with psycopg.connect(app_role_url(postgres, database_url), autocommit=True) as conn:
        removed = conn.execute("SELECT larm_apply_retention()").fetchone()
    assert removed and removed[0]["event_chunks"] >= 1 and removed[0]["audit"] == 1
    assert scalar(database_url, "SELECT count(*) FROM events") == 1
    assert scalar(database_url, "SELECT subject_id FROM audit_log") == "2"
