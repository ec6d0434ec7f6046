"""Database plumbing shared by every process: numbered migrations, connection helpers."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import orjson
import psycopg

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any fixed number: every process that migrates takes this lock, so they run one at a time.
_MIGRATION_LOCK = 0x6C61726D  # "larm"


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


def migrate(conninfo: str, *, chunk_interval_s: float | None = None) -> list[str]:
    """Apply pending migrations, each in its own transaction; returns the names applied."""
    applied: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
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
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied


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


T = TypeVar("T")


def from_row(cls: type[T], values: Sequence[Any]) -> T:
    """A dataclass from a positional row whose columns are in the dataclass's field order."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**dict(zip(names, values, strict=False)))
