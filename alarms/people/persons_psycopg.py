"""The person registry: the one place with names, addresses and phone numbers. The API's role
reaches it only through the database functions of migrations 0009 and 0012, each of which
writes its audit row in the same statement: by the person's ref (supervisor, admin), as the
person of an alarm (its operator; the patrol with a live escalation of it) or of an escalation
(the patrol while it is live); written, given an absence and erased by the same kind of call."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alarms.people.audit_psycopg import Actor
from alarms.people.record import RECORD_COLUMNS, Absence, PersonRecord, record_of
from larmkedja.db import AsyncConn

_COLUMNS = ", ".join(RECORD_COLUMNS)
READ = f"SELECT {_COLUMNS} FROM read_person(%s, %s, %s)"  # noqa: S608 - constant columns
OF_ALARM = f"SELECT {_COLUMNS} FROM read_person_of_alarm(%s, %s, %s)"  # noqa: S608
OF_ESCALATION = f"SELECT {_COLUMNS} FROM read_person_of_escalation(%s, %s, %s)"  # noqa: S608
WRITE = f"SELECT {_COLUMNS} FROM write_person_record(%s, %s, %s, %s)"  # noqa: S608
ERASE = "SELECT erase_person(%s, %s, %s)"
ABSENCE = """
SELECT absence_id, starts_at, ends_at, reason
FROM write_absence(%(person_ref)s, %(absence_id)s, %(from)s, %(until)s, %(reason)s,
                   %(actor)s, %(role)s)
"""


class PersonError(Exception):
    """A change to a person's record that cannot be made (the API answers 404 or 409)."""


class PersonNotFound(PersonError, LookupError):
    pass


class AbsenceRefused(PersonError):
    """An absence that ends before it starts, or one too many (HTTP 409)."""


async def _one(conn: AsyncConn, sql: str, params: Any) -> PersonRecord | None:
    row = await (await conn.execute(sql, params)).fetchone()
    return record_of(row) if row else None


async def get_person(conn: AsyncConn, person_ref: str, *, by: Actor) -> PersonRecord | None:
    """The record, or None; either way the read is audited (`person.read`) by the database."""
    return await _one(conn, READ, (person_ref, by.name, by.role))


async def person_of_alarm(
    conn: AsyncConn, alarm_id: uuid.UUID, *, by: Actor
) -> PersonRecord | None:
    """The person whose device raised the alarm, if `by` may see them now (audited)."""
    return await _one(conn, OF_ALARM, (alarm_id, by.name, by.role))


async def person_of_escalation(
    conn: AsyncConn, escalation_id: uuid.UUID, *, by: Actor
) -> PersonRecord | None:
    """The person the patrol goes to, while the escalation is live (audited)."""
    return await _one(conn, OF_ESCALATION, (escalation_id, by.name, by.role))


async def put_person(
    conn: AsyncConn, person_ref: str, values: dict[str, Any], *, by: Actor
) -> PersonRecord:
    """Create or replace the record (audited `person.write` in the same statement). A device
    or plan that is another person's is a `psycopg.errors.UniqueViolation` (409)."""
    record = await _one(conn, WRITE, (person_ref, Jsonb(values), by.name, by.role))
    if record is None:  # pragma: no cover - the upsert always returns its row
        raise LookupError("person not stored")
    return record


async def put_absence(
    conn: AsyncConn,
    person_ref: str,
    absence_id: str,
    *,
    start: datetime,
    until: datetime,
    reason: str | None,
    by: Actor,
) -> Absence:
    """Create or replace an absence (audited `person.absence`, without its reason)."""
    if until <= start:
        raise AbsenceRefused("an absence must end after it starts")
    params = {
        "person_ref": person_ref,
        "absence_id": absence_id,
        "from": start,
        "until": until,
        "reason": reason,
        "actor": by.name,
        "role": by.role,
    }
    try:
        row = await (await conn.execute(ABSENCE, params)).fetchone()
    except psycopg.errors.CheckViolation as exc:
        raise AbsenceRefused(str(exc.diag.message_primary or exc)) from None
    if row is None:
        raise PersonNotFound(person_ref)
    absence_id, start, until, reason = row
    return Absence(absence_id=absence_id, from_=start, until=until, reason=reason)


async def erase_person(conn: AsyncConn, person_ref: str, *, by: Actor) -> bool:
    """Erase the person and the free text naming them; audited `person.erased` (no personal
    data in it) whether or not there was such a person. True if there was."""
    cur = await conn.execute(ERASE, (person_ref, by.name, by.role))
    row = await cur.fetchone()
    return bool(row and row[0])
