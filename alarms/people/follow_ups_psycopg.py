"""Persons marked "follow up", in PostgreSQL (migration 0018): an operator or supervisor marks
a person with a short reason, the hand-over lists every person marked with who marked them,
and the mark is cleared when it is done. Marking, clearing and the hand-over's read go through
database functions that write their audit rows in the same statement (never the reason).
Async psycopg, for the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from alarms.people.audit_psycopg import Actor
from larmkedja.db import AsyncConn, from_row

COLUMNS = "person_ref, reason, marked_at, marked_by, marked_role"
MARK = f"SELECT {COLUMNS} FROM mark_follow_up(%s, %s, %s, %s)"  # noqa: S608 - constant columns
CLEAR = "SELECT clear_follow_up(%s, %s, %s)"
READ = f"SELECT {COLUMNS}, name, site FROM read_follow_ups(%s, %s, %s)"  # noqa: S608
OF_PERSON = f"SELECT {COLUMNS} FROM person_follow_ups WHERE person_ref = %s"  # noqa: S608


class FollowUp(BaseModel):
    """A person marked "follow up", until someone clears it."""

    model_config = ConfigDict(frozen=True)

    person_ref: str
    reason: str = Field(description="what must be followed up")
    marked_at: datetime
    marked_by: str = Field(description="who marked the person (the token's name)")
    marked_role: str = Field(description="operator or supervisor")


class ListedFollowUp(FollowUp):
    """As the hand-over lists it: with whom to follow up (each listed person is audited)."""

    name: str
    site: str | None


async def mark(conn: AsyncConn, person_ref: str, *, reason: str, by: Actor) -> FollowUp | None:
    """Mark the person (again: the reason and marker are replaced). None when there is no such
    person or an operator does not see the person now (no alarm of theirs open or resolved in
    the last day): the same answer, so a guess learns nothing. The attempt is audited either
    way, so commit also when None."""
    row = await (await conn.execute(MARK, (person_ref, reason, by.name, by.role))).fetchone()
    return from_row(FollowUp, row) if row else None


async def clear(conn: AsyncConn, person_ref: str, *, by: Actor) -> bool:
    """Done: the mark is removed. False if the person was not marked (audited either way)."""
    row = await (await conn.execute(CLEAR, (person_ref, by.name, by.role))).fetchone()
    return bool(row and row[0])


async def listed(conn: AsyncConn, *, site: str | None, by: Actor) -> list[ListedFollowUp]:
    """Every person marked (of a site, or all), oldest mark first; each one audited."""
    rows = await (await conn.execute(READ, (site, by.name, by.role))).fetchall()
    return [from_row(ListedFollowUp, r) for r in rows]


async def of_person(conn: AsyncConn, person_ref: str) -> FollowUp | None:
    """The mark of a person already read (the case of an alarm shows it)."""
    row = await (await conn.execute(OF_PERSON, (person_ref,))).fetchone()
    return from_row(FollowUp, row) if row else None
