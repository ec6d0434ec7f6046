"""Escalations to the night patrol (async psycopg, for the API)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from alarms.patrol.lifecycle import (
    ALLOWED_FROM,
    TARGET,
    EscalationAction,
    EscalationState,
    EscalationTransitionError,
)
from alarms.people.audit_psycopg import audited_change
from larmkedja.db import AsyncConn, from_row

LIVE_STATES = ("open", "acknowledged", "arrived")


class EscalationRow(BaseModel):
    """Work for the night patrol (the API's schema, contract §3)."""

    model_config = ConfigDict(frozen=True)

    escalation_id: uuid.UUID
    site: str
    device_id: str
    alarm_id: uuid.UUID | None
    plan_id: str | None
    check_id: int | None
    reason: str
    state: str = Field(description="open, acknowledged, arrived, completed or cancelled")
    created_at: datetime
    created_by: str
    ack_deadline: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    arrived_at: datetime | None
    arrived_by: str | None
    completed_at: datetime | None
    completed_by: str | None
    outcome: str | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    cancel_reason: str | None
    unack_alerts: int
    overdue: bool = Field(description="open and past its acknowledgement deadline")
    person_ref: str | None = Field(
        default=None, description="the person's reference (e.g. key box); no name, no address"
    )


COLUMNS = """
e.escalation_id, e.site, e.device_id, e.alarm_id, e.plan_id, e.check_id, e.reason, e.state,
e.created_at, e.created_by, e.ack_deadline, e.acknowledged_at, e.acknowledged_by, e.arrived_at,
e.arrived_by, e.completed_at, e.completed_by, e.outcome, e.cancelled_at, e.cancelled_by,
e.cancel_reason, e.unack_alerts, (e.state = 'open' AND e.ack_deadline < now()) AS overdue,
(SELECT p.person_ref FROM persons p WHERE p.device_id = e.device_id) AS person_ref
"""

LIST = f"""
SELECT {COLUMNS} FROM escalations e
WHERE e.state = ANY(%(states)s) AND (%(site)s::text IS NULL OR e.site = %(site)s)
ORDER BY e.created_at, e.escalation_id
LIMIT %(limit)s
"""  # noqa: S608 - COLUMNS is a constant
GET = f"SELECT {COLUMNS} FROM escalations e WHERE e.escalation_id = %s"  # noqa: S608


def _row(values: tuple[Any, ...]) -> EscalationRow:
    return from_row(EscalationRow, values)


def states_for(filter_: str) -> list[str]:
    if filter_ == "open":
        return list(LIVE_STATES)
    if filter_ == "all":
        return [*LIVE_STATES, "completed", "cancelled"]
    return [filter_]


async def list_escalations(
    conn: AsyncConn, *, state: str = "open", site: str | None = None, limit: int = 500
) -> list[EscalationRow]:
    cur = await conn.execute(LIST, {"states": states_for(state), "site": site, "limit": limit})
    return [_row(r) for r in await cur.fetchall()]


async def get_escalation(conn: AsyncConn, escalation_id: uuid.UUID) -> EscalationRow | None:
    cur = await conn.execute(GET, (escalation_id,))
    row = await cur.fetchone()
    return _row(row) if row else None


TRANSITION = audited_change(
    update="""
    UPDATE escalations SET
        state = %(target)s,
        acknowledged_at = CASE WHEN %(target)s IN ('acknowledged', 'arrived', 'completed')
                               THEN coalesce(acknowledged_at, now()) ELSE acknowledged_at END,
        acknowledged_by = CASE WHEN %(target)s IN ('acknowledged', 'arrived', 'completed')
                               THEN coalesce(acknowledged_by, %(actor)s) ELSE acknowledged_by END,
        arrived_at = CASE WHEN %(target)s = 'arrived' THEN now() ELSE arrived_at END,
        arrived_by = CASE WHEN %(target)s = 'arrived' THEN %(actor)s ELSE arrived_by END,
        completed_at = CASE WHEN %(target)s = 'completed' THEN now() ELSE completed_at END,
        completed_by = CASE WHEN %(target)s = 'completed' THEN %(actor)s ELSE completed_by END,
        outcome = CASE WHEN %(target)s = 'completed' THEN %(text)s ELSE outcome END,
        cancelled_at = CASE WHEN %(target)s = 'cancelled' THEN now() ELSE cancelled_at END,
        cancelled_by = CASE WHEN %(target)s = 'cancelled' THEN %(actor)s ELSE cancelled_by END,
        cancel_reason = CASE WHEN %(target)s = 'cancelled' THEN %(text)s ELSE cancel_reason END,
        version = version + 1
    WHERE escalation_id = %(id)s AND state = ANY(%(allowed)s)
    RETURNING *
    """,
    alias="e",
    subject_type="escalation",
    columns=COLUMNS,
)


class EscalationNotFound(LookupError):
    pass


async def act(
    conn: AsyncConn,
    *,
    escalation_id: uuid.UUID,
    action: EscalationAction,
    actor: str,
    role: str,
    text: str | None = None,
) -> EscalationRow:
    """One step of the patrol (or a supervisor's cancel); raises EscalationNotFound or
    EscalationTransitionError with nothing changed."""
    async with conn.transaction():
        cur = await conn.execute(
            TRANSITION,
            {
                "id": escalation_id,
                "target": TARGET[action].value,
                "allowed": [s.value for s in ALLOWED_FROM[action]],
                "actor": actor,
                "role": role,
                "text": text,
                "action": f"escalation.{action.value}",
                "details": Jsonb({"text": text} if text else {}),
            },
        )
        row = await cur.fetchone()
        if row is None:
            current = await get_escalation(conn, escalation_id)
            if current is None:
                raise EscalationNotFound(str(escalation_id))
            raise EscalationTransitionError(action=action, state=EscalationState(current.state))
        return _row(row)
