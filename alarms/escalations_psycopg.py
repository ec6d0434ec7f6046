"""Escalations to the night patrol (async psycopg, for the API)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from larmkedja.db import AsyncConn, from_row

LIVE_STATES = ("open", "acknowledged", "arrived")


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationRow:
    escalation_id: uuid.UUID
    site: str
    device_id: str
    alarm_id: uuid.UUID | None
    plan_id: str | None
    check_id: int | None
    reason: str
    state: str
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
    overdue: bool


COLUMNS = """
e.escalation_id, e.site, e.device_id, e.alarm_id, e.plan_id, e.check_id, e.reason, e.state,
e.created_at, e.created_by, e.ack_deadline, e.acknowledged_at, e.acknowledged_by, e.arrived_at,
e.arrived_by, e.completed_at, e.completed_by, e.outcome, e.cancelled_at, e.cancelled_by,
e.cancel_reason, e.unack_alerts, (e.state = 'open' AND e.ack_deadline < now()) AS overdue
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
