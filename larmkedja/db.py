"""Database plumbing shared by every process: numbered migrations, connection helpers."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import psycopg
import psycopg.sql
from pydantic import BaseModel

from larmkedja.db_connect import client_conninfo, connect

if TYPE_CHECKING:
    from larmkedja.settings import Settings

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any fixed number: every process that migrates takes this lock, so they run one at a time.
_MIGRATION_LOCK = 0x6C61726D  # "larm"


# The administrators' role and each process's own (migrations 0005 and 0007).
ROLES = ("larm_app", "larm_ingest", "larm_engine", "larm_api", "larm_gateway")


class DatabaseError(RuntimeError):
    """The database is missing something the service needs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    found = []
    for entry in resources.files("larmkedja.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(version=int(match[1]), name=entry.name, sql=entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise DatabaseError(f"two migrations share a number: {versions}")
    return found


def migrate(
    conninfo: str,
    *,
    chunk_interval_s: float | None = None,
    app_password: str | None = None,
    config: dict[str, str] | None = None,
    role_passwords: dict[str, str] | None = None,
) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied.
    Run by the database owner. Also sets the roles' passwords (`larm_app` from `app_password`,
    the processes' roles from `role_passwords`) and `larm_config`."""
    applied: list[str] = []
    with psycopg.connect(client_conninfo(conninfo), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in migrations():
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info("migration applied: %s", migration.name)
                applied.append(migration.name)
            if chunk_interval_s is not None:
                conn.execute(
                    "SELECT set_chunk_time_interval('events', make_interval(secs => %s))",
                    (chunk_interval_s,),
                )
            passwords = dict(role_passwords or {})
            if app_password is not None:
                passwords["larm_app"] = app_password
            for role, password in sorted(passwords.items()):
                if role not in ROLES:
                    raise DatabaseError(f"no such role: {role}")
                conn.execute(
                    psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        psycopg.sql.Identifier(role), psycopg.sql.Literal(password)
                    )
                )
            for key, value in (config or {}).items():
                conn.execute(
                    "INSERT INTO larm_config (key, value) VALUES (%s, %s) ON CONFLICT (key)"
                    " DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                    (key, value),
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied


def latest_version() -> int:
    return max(m.version for m in migrations())


def may_migrate(conninfo: str) -> bool:
    """True for the owner (or a superuser); the services' own role may not."""
    with connect(conninfo) as conn:
        row = conn.execute(
            "SELECT has_database_privilege(current_user, current_database(), 'CREATE')"
        ).fetchone()
    return bool(row and row[0])


def wait_for_schema(conninfo: str, *, timeout: float = 120.0) -> None:
    """Wait until the owner has applied every migration this code knows."""
    wanted, deadline = latest_version(), time.monotonic() + timeout
    while True:
        try:
            with connect(conninfo) as conn:
                row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
            if row and row[0] is not None and int(row[0]) >= wanted:
                return
        except psycopg.Error as exc:
            log.info("waiting for the database schema: %s", exc)
        if time.monotonic() > deadline:
            raise DatabaseError(f"schema version {wanted} not applied within {timeout:.0f} s")
        time.sleep(1.0)


UPSERT_HEARTBEAT = """
INSERT INTO service_heartbeats (service, instance, pid, host, started_at, seen_at, details)
VALUES (%s, %s, %s, %s, now(), now(), %s::jsonb)
ON CONFLICT (service, instance) DO UPDATE
SET pid = EXCLUDED.pid, host = EXCLUDED.host, seen_at = now(), details = EXCLUDED.details,
    started_at = CASE WHEN service_heartbeats.pid = EXCLUDED.pid
                      THEN service_heartbeats.started_at ELSE now() END
"""


def beat_params(
    *, service: str, instance: str, details: dict[str, object]
) -> tuple[str, str, int, str, str]:
    """Parameters for UPSERT_HEARTBEAT: this process says it is alive."""
    return (service, instance, os.getpid(), socket.gethostname(), orjson.dumps(details).decode())


# Row types: the adapters read positional rows and convert each column where they use it.
Conn = psycopg.Connection[tuple[Any, ...]]
Cursor = psycopg.Cursor[tuple[Any, ...]]
AsyncConn = psycopg.AsyncConnection[tuple[Any, ...]]


M = TypeVar("M", bound=BaseModel)


def from_row(cls: type[M], values: Sequence[Any]) -> M:
    """A model from a positional row whose columns are in the model's field order (the query's
    column list and the model are written side by side, and the model is the API's schema)."""
    return cls.model_validate(dict(zip(cls.model_fields, values, strict=False)))


def retention_config(settings: Settings) -> dict[str, str]:
    return {
        "retention_days": str(settings.retention_days),
        "alarm_retention_days": str(settings.alarm_retention_days),
        "audit_retention_days": str(settings.audit_retention_days),
    }


def prepare(settings: Settings, *, migrate_if_owner: bool = True) -> None:
    """What every process does at start: migrate if it may (the owner: dev and tests), else wait
    until the owner has (the services' own role in `make up` and in compose)."""
    owner_url = settings.database_admin_url or settings.database_url
    if migrate_if_owner and may_migrate(owner_url):
        migrate(
            owner_url,
            chunk_interval_s=settings.events_chunk_interval_s,
            app_password=settings.app_db_password,
            config=retention_config(settings),
            role_passwords=settings.db_role_passwords,
        )
    else:
        wait_for_schema(settings.database_url)
