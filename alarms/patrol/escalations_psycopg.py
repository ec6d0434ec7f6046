"""Escalations to the night patrol (async psycopg, for the API)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from alarms.patrol.lifecycle import LIFECYCLE, EscalationAction
from alarms.people.audit_psycopg import Actor, AuditedMoves
from alarms.people.lookups_psycopg import person_column, person_of
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
    outcome_code: str | None = Field(
        default=None, description="the code the patrol completed with (`GET /api/v1/outcomes`)"
    )
    cancelled_at: datetime | None
    cancelled_by: str | None
    cancel_reason: str | None
    unack_alerts: int
    overdue: bool = Field(description="open and past its acknowledgement deadline")
    person_ref: str | None = Field(
        default=None, description="the person's reference (e.g. key box); no name, no address"
    )
    no_access: bool = Field(
        default=False, description="the person has no recorded way into the home"
    )


# The person lookups as `alarms.people.lookups_psycopg` writes them (migration 0019).
COLUMNS = f"""
e.escalation_id, e.site, e.device_id, e.alarm_id, e.plan_id, e.check_id, e.reason, e.state,
e.created_at, e.created_by, e.ack_deadline, e.acknowledged_at, e.acknowledged_by, e.arrived_at,
e.arrived_by, e.completed_at, e.completed_by, e.outcome, e.outcome_code, e.cancelled_at,
e.cancelled_by,
e.cancel_reason, e.unack_alerts, (e.state = 'open' AND e.ack_deadline < now()) AS overdue,
{person_of("e.device_id", "e.plan_id")} AS person_ref,
coalesce(NOT {person_column("has_access", "e.device_id", "e.plan_id")}, false) AS no_access
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


class EscalationNotFound(LookupError):
    pass


MOVES = AuditedMoves(
    lifecycle=LIFECYCLE,
    subject_type="escalation",
    table="escalations",
    alias="e",
    columns=COLUMNS,
    not_found=EscalationNotFound,
    case_of="e.alarm_id",
    # The patrol's steps are steps of the alarm's case (a night check's escalation has none).
    case_actions={
        EscalationAction.ACK: "patrol_ack",
        EscalationAction.ARRIVE: "patrol_arrive",
        EscalationAction.COMPLETE: "patrol_complete",
    },
)


SET_CODE = "UPDATE escalations SET outcome_code = %s WHERE escalation_id = %s"


async def act(
    conn: AsyncConn,
    escalation_id: uuid.UUID,
    action: EscalationAction,
    *,
    by: Actor,
    text: str | None = None,
    code: str | None = None,
) -> EscalationRow:
    """One step of the patrol (or a supervisor's cancel), `complete` with an optional outcome
    `code`; raises EscalationNotFound or EscalationTransitionError with nothing changed."""

    async with conn.transaction():
        # The text may name the person: it stays on the escalation and in the case (erasure
        # reaches both); the append-only audit log records only that there was one.
        audit: dict[str, object] = {"with_text": True} if text else {}
        case: dict[str, object] = {"text": text} if text else {}
        if code:
            audit, case = {**audit, "code": code}, {**case, "code": code}
        row = await MOVES.apply(
            conn, escalation_id, action, by=by, text=text, details=audit, case_detail=case
        )
        if code:
            await conn.execute(SET_CODE, (code, escalation_id))
            return _row(row).model_copy(update={"outcome_code": code})
    return _row(row)
