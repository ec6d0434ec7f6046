"""Hand-over notes from home care to the night patrol, in PostgreSQL (migration 0013).

A note is left on a person for the night (one statement writes it and its audit row); the
patrol reads the notes of its site through `read_handover_notes`, which audits each person
shown, and acknowledges each (audited, and the database ends its `handover.unacknowledged`
alert). The audit log never holds the note's text. Async psycopg, for the API.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from alarms.people.audit_psycopg import Actor
from alarms.people.persons_psycopg import PersonError, PersonNotFound
from larmkedja.db import AsyncConn, from_row


class HandoverNote(BaseModel):
    """A note from the day team for the night, and whether the patrol has acknowledged it."""

    model_config = ConfigDict(frozen=True)

    note_id: uuid.UUID
    person_ref: str
    site: str
    text: str
    created_at: datetime
    created_by: str
    due_at: datetime = Field(description="acknowledged by then, or the supervisor is alerted")
    shown_until: datetime = Field(description="the end of the night it is for")
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    alerted_at: datetime | None = Field(description="when `handover.unacknowledged` was raised")


class PatrolNote(HandoverNote):
    """A note as the patrol sees it: with where the person lives."""

    name: str
    address: str


NOTE_COLUMNS = """
n.note_id, n.person_ref, n.site, n.text, n.created_at, n.created_by, n.due_at, n.shown_until,
n.acknowledged_at, n.acknowledged_by, n.alerted_at
"""
# No row: no such person, a person without a site, or one with `max` notes for the night.
LEAVE = f"""
WITH p AS (
    SELECT person_ref, site FROM persons
    WHERE person_ref = %(person_ref)s AND site IS NOT NULL
      AND (SELECT count(*) FROM handover_notes h
           WHERE h.person_ref = %(person_ref)s AND h.shown_until > now()) < %(max)s
), n AS (
    INSERT INTO handover_notes (person_ref, site, text, created_by, due_at, shown_until)
    SELECT person_ref, site, %(text)s, %(actor)s, %(due_at)s, %(shown_until)s FROM p
    RETURNING *
), audited AS (
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    SELECT %(actor)s, %(role)s, 'handover_note.leave', 'handover_note', note_id::text,
           jsonb_build_object('person_ref', person_ref)
    FROM n
)
SELECT {NOTE_COLUMNS} FROM n
"""  # noqa: S608 - constants
WHY_NOT = "SELECT site IS NOT NULL FROM persons WHERE person_ref = %s"
ACK = f"""
WITH n AS (
    UPDATE handover_notes SET acknowledged_at = now(), acknowledged_by = %(actor)s
    WHERE note_id = %(note_id)s AND acknowledged_at IS NULL
    RETURNING *
), audited AS (
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    SELECT %(actor)s, %(role)s, 'handover_note.ack', 'handover_note', note_id::text,
           jsonb_build_object('person_ref', person_ref, 'late', now() > due_at)
    FROM n
)
SELECT {NOTE_COLUMNS} FROM n
"""  # noqa: S608 - constants
ACKNOWLEDGED_BY = "SELECT acknowledged_by FROM handover_notes WHERE note_id = %s"
READ = """
SELECT note_id, person_ref, site, text, created_at, created_by, due_at, shown_until,
       acknowledged_at, acknowledged_by, alerted_at, name, address
FROM read_handover_notes(%s, %s, %s)
"""
# The notes shown in a case raised at `at`: left before it, and either still in their night
# then or not yet shown in an earlier case of the person (the person's next case).
OF_CASE = f"""
SELECT {NOTE_COLUMNS} FROM handover_notes n
WHERE n.person_ref = %(person_ref)s AND n.created_at <= %(at)s
  AND (n.shown_until > %(at)s OR NOT EXISTS (
        SELECT 1 FROM alarms a JOIN person_devices d ON d.device_id = a.device_id
        WHERE d.person_ref = n.person_ref AND a.raised_at >= n.created_at
          AND a.raised_at < %(at)s))
ORDER BY n.created_at
LIMIT 50
"""  # noqa: S608 - constants


class NoteRefused(PersonError):
    """Already acknowledged, a person without a site, or too many notes (HTTP 409)."""


class NoteNotFound(PersonError, LookupError):
    pass


async def _moved_or_why(
    conn: AsyncConn, sql: str, params: dict[str, Any], *, why: tuple[str, tuple[Any, ...]]
) -> tuple[HandoverNote | None, tuple[Any, ...] | None]:
    """The note `sql` wrote (audited in the same statement), or else the row of `why` that says
    why it did not (None: no such person or note)."""
    async with conn.transaction():
        row = await (await conn.execute(sql, params)).fetchone()
    if row is not None:
        return from_row(HandoverNote, row), None
    return None, await (await conn.execute(why[0], why[1])).fetchone()


async def leave_note(
    conn: AsyncConn,
    person_ref: str,
    *,
    text: str,
    due_at: datetime,
    shown_until: datetime,
    by: Actor,
    max_notes: int,
) -> HandoverNote:
    params: dict[str, Any] = {
        "person_ref": person_ref,
        "text": text,
        "due_at": due_at,
        "shown_until": shown_until,
        "actor": by.name,
        "role": by.role,
        "max": max_notes,
    }
    note, has_site = await _moved_or_why(conn, LEAVE, params, why=(WHY_NOT, (person_ref,)))
    if note is not None:
        return note
    if has_site is None:
        raise PersonNotFound(person_ref)
    if not has_site[0]:
        raise NoteRefused("the person has no site: whose night patrol would read the note?")
    raise NoteRefused(f"the person has {max_notes} notes for the night already")


async def acknowledge(conn: AsyncConn, note_id: uuid.UUID, *, by: Actor) -> HandoverNote:
    """The patrol has read it (audited; ends its alert). 409 if it was acknowledged before."""
    params = {"note_id": note_id, "actor": by.name, "role": by.role}
    note, before = await _moved_or_why(conn, ACK, params, why=(ACKNOWLEDGED_BY, (note_id,)))
    if note is not None:
        return note
    if before is None:
        raise NoteNotFound(str(note_id))
    raise NoteRefused(f"acknowledged already by {before[0]}")


async def notes_for_patrol(conn: AsyncConn, *, site: str | None, by: Actor) -> list[PatrolNote]:
    """The notes of the current and coming night of `site` (all sites: None) and every one not
    acknowledged, unacknowledged first; each person shown is audited."""
    async with conn.transaction():
        rows = await (await conn.execute(READ, (site, by.name, by.role))).fetchall()
    return [from_row(PatrolNote, r) for r in rows]


async def notes_of_case(conn: AsyncConn, *, person_ref: str, at: datetime) -> list[HandoverNote]:
    """The hand-over notes shown in the person's case of an alarm raised at `at`."""
    rows = await (await conn.execute(OF_CASE, {"person_ref": person_ref, "at": at})).fetchall()
    return [from_row(HandoverNote, r) for r in rows]
