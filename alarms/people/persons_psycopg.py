"""The person registry: the one place with names, addresses and phone numbers. The API's role
reaches it only through the database functions of migration 0009, each of which writes its audit
row in the same statement (`read_person`, `write_person`, `erase_person`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from alarms.people.audit_psycopg import Actor
from larmkedja.db import AsyncConn, from_row


class PersonRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    person_ref: str
    device_id: str | None
    plan_id: str | None
    name: str
    address: str
    phone: str | None
    access_notes: str | None
    updated_at: datetime
    updated_by: str


COLUMNS = (
    "person_ref, device_id, plan_id, name, address, phone, access_notes, updated_at, updated_by"
)
READ = f"SELECT {COLUMNS} FROM read_person(%s, %s, %s)"  # noqa: S608 - constant columns
WRITE = f"""
SELECT {COLUMNS} FROM write_person(
    %(person_ref)s, %(device_id)s, %(plan_id)s, %(name)s, %(address)s, %(phone)s,
    %(access_notes)s, %(actor)s, %(role)s)
"""  # noqa: S608 - constant columns
ERASE = "SELECT erase_person(%s, %s, %s)"


async def get_person(conn: AsyncConn, person_ref: str, *, by: Actor) -> PersonRow | None:
    """The record, or None; either way the read is audited (`person.read`) by the database."""
    cur = await conn.execute(READ, (person_ref, by.name, by.role))
    row = await cur.fetchone()
    return from_row(PersonRow, row) if row else None


async def put_person(conn: AsyncConn, values: dict[str, Any], *, by: Actor) -> PersonRow:
    """Create or replace the record (audited `person.write` in the same statement)."""
    cur = await conn.execute(WRITE, {**values, "actor": by.name, "role": by.role})
    row = await cur.fetchone()
    if row is None:  # pragma: no cover - the upsert always returns its row
        raise LookupError("person not stored")
    return from_row(PersonRow, row)


async def erase_person(conn: AsyncConn, person_ref: str, *, by: Actor) -> bool:
    """Erase the person and the free text naming them; audited `person.erased` (no personal
    data in it) whether or not there was such a person. True if there was."""
    cur = await conn.execute(ERASE, (person_ref, by.name, by.role))
    row = await cur.fetchone()
    return bool(row and row[0])
