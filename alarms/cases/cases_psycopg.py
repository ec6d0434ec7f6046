"""The case of an alarm in PostgreSQL: notes, call attempts, take-overs, and the whole case.

Each step is one statement that writes the step, its audit row (without the note's text or
the number called: the audit log is kept for years and is not erased with a person) and, for
a take-over, the new handler, so a step is never half taken. Async psycopg, for the API.
"""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

from psycopg.types.json import Jsonb

from alarms.cases.rules import CaseAction, CaseError, CaseStep, case_of
from alarms.people.audit_psycopg import Actor
from alarms.queue.queries_psycopg import COLUMNS, AlarmNotFound, AlarmRow, from_alarm_row
from larmkedja.db import AsyncConn

# `%(states)s`: the states the step is allowed in. No row: no such alarm, or not allowed.
ADD_STEP = """
WITH a AS (
    SELECT alarm_id FROM alarms WHERE alarm_id = %(alarm_id)s AND state = ANY(%(states)s)
), step AS (
    INSERT INTO case_entries (alarm_id, by_name, by_role, action, detail)
    SELECT alarm_id, %(actor)s, %(role)s, %(action)s, %(detail)s FROM a
    RETURNING at, by_name, action, detail
), audited AS (
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    SELECT %(actor)s, %(role)s, 'alarm.' || %(action)s, 'alarm', alarm_id::text, %(audit)s
    FROM a
)
SELECT at, by_name, action, detail FROM step
"""
STATE_OF = "SELECT state FROM alarms WHERE alarm_id = %s"

# Who had it is read from the statement's snapshot (before the UPDATE).
TAKE_OVER = f"""
WITH before AS (
    SELECT coalesce(handled_by, answered_by) AS had FROM alarms WHERE alarm_id = %(alarm_id)s
), a AS (
    UPDATE alarms SET handled_by = %(actor)s, version = version + 1
    WHERE alarm_id = %(alarm_id)s AND state IN ('answered', 'escalated')
      AND coalesce(handled_by, answered_by) IS DISTINCT FROM %(actor)s
    RETURNING *
), step AS (
    INSERT INTO case_entries (alarm_id, by_name, by_role, action, detail)
    SELECT a.alarm_id, %(actor)s, %(role)s, 'taken_over', jsonb_build_object('from', before.had)
    FROM a, before
), audited AS (
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    SELECT %(actor)s, %(role)s, 'alarm.take_over', 'alarm', a.alarm_id::text,
           jsonb_build_object('from', before.had)
    FROM a, before
)
SELECT {COLUMNS} FROM a
"""  # noqa: S608 - COLUMNS is a constant

CASE = """
SELECT at, by_name, action, detail FROM case_entries WHERE alarm_id = %s ORDER BY at, entry_id
"""

NOTE_STATES = ["raised", "answered", "escalated", "resolved"]
CALL_STATES = ["answered", "escalated"]  # the operator has it


class StepRefused(CaseError):
    """Not in this state (HTTP 409)."""


async def _refuse(conn: AsyncConn, alarm_id: uuid.UUID, why: str) -> NoReturn:
    """Nothing was changed: say whether there is no such alarm or what state refused it."""
    state = await (await conn.execute(STATE_OF, (alarm_id,))).fetchone()
    if state is None:
        raise AlarmNotFound(str(alarm_id))
    raise StepRefused(f"{why} {state[0]}")


def _step(row: tuple[Any, ...]) -> CaseStep:
    at, by, action, detail = row
    return CaseStep(at=at, by=by, action=CaseAction(action), detail=detail or {})


async def add_step(
    conn: AsyncConn,
    *,
    alarm_id: uuid.UUID,
    by: Actor,
    action: CaseAction,
    detail: dict[str, Any],
) -> CaseStep:
    """A note (any state) or a call attempt (while the alarm is answered or escalated)."""
    states = CALL_STATES if action is CaseAction.CALL else NOTE_STATES
    params = {
        "alarm_id": alarm_id,
        "states": states,
        "actor": by.name,
        "role": by.role,
        "action": action.value,
        "detail": Jsonb(detail),
        "audit": Jsonb({"reached": detail["reached"]} if "reached" in detail else {}),
    }
    async with conn.transaction():
        row = await (await conn.execute(ADD_STEP, params)).fetchone()
    if row is None:
        await _refuse(conn, alarm_id, f"cannot record a {action.value} on an alarm that is")
    return _step(row)


async def take_over(conn: AsyncConn, *, alarm_id: uuid.UUID, by: Actor) -> AlarmRow:
    """`by` has the alarm now (audited, in its case); 409 unless it is answered or escalated
    and someone else has it."""
    params = {"alarm_id": alarm_id, "actor": by.name, "role": by.role}
    async with conn.transaction():
        row = await (await conn.execute(TAKE_OVER, params)).fetchone()
    if row is None:
        await _refuse(conn, alarm_id, "cannot take over (or it is yours already) an alarm that is")
    return from_alarm_row(row)


async def get_case(conn: AsyncConn, alarm: AlarmRow) -> list[CaseStep]:
    """Every step of the alarm's case in time order, its first press first."""
    raised = CaseStep(
        at=alarm.raised_at,
        by="system",
        action=CaseAction.RAISED,
        detail={"kind": alarm.kind, "device_id": alarm.device_id, "test": alarm.test},
    )
    rows = await (await conn.execute(CASE, (alarm.alarm_id,))).fetchall()
    return case_of(raised=raised, entries=[_step(r) for r in rows])
