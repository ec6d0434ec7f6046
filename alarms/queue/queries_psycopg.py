"""The alarm queue and its transitions for the API (async psycopg).

Each transition is one atomic `UPDATE … WHERE alarm_id = … AND state = ANY(allowed)`, with its
audit row written by the same statement: two operators answering at once get one success and
one conflict, and one audit row. The allowed states come from `alarms.queue.lifecycle`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Required, TypedDict, Unpack

from pydantic import BaseModel, ConfigDict, Field

from alarms.people.audit_psycopg import Actor, AuditedMoves
from alarms.people.lookups_psycopg import absent_at, person_column
from alarms.queue.lifecycle import LIFECYCLE, OPEN_STATES, Action, AlarmState
from larmkedja.db import AsyncConn, from_row


class AlarmNotFound(LookupError):
    pass


class AlarmRow(BaseModel):
    """An alarm as the queue shows it (the API's schema, contract §3)."""

    model_config = ConfigDict(frozen=True)

    alarm_id: uuid.UUID
    site: str
    device_id: str
    kind: str
    priority: int = Field(description="1 most urgent … 5 least (docs/alarm-chain.md)")
    state: str = Field(description="raised, answered, escalated or resolved")
    source: str = Field(description="device, supervision or system")
    raised_at: datetime = Field(description="when the system received the first event")
    device_ts: datetime | None = Field(description="the device's own time of its first event")
    last_event_at: datetime
    event_count: int = Field(description="presses folded into this alarm")
    reset_at_device: datetime | None = Field(description="alarm.cancel seen at the device")
    answered_at: datetime | None
    answered_by: str | None
    escalated_at: datetime | None
    resolved_at: datetime | None
    outcome: str | None
    details: dict[str, Any]
    test: bool = Field(default=False, description="a test alarm: not in the answer-time KPI")
    handled_by: str | None = Field(
        default=None, description="who has the alarm now: who answered it, or took it over"
    )
    incident_id: uuid.UUID | None = Field(
        default=None, description="the incident (a burst of technical alarms) it is part of"
    )
    waiting_s: float = Field(description="until now if unanswered, else the answer time")
    no_access: bool = Field(
        default=False, description="the device's person has no recorded way into the home"
    )
    absent: bool = Field(
        default=False, description="raised while the device's person is recorded as away"
    )
    escalation_id: uuid.UUID | None = None
    # This transition answered it (for the answer-time histogram); not part of the schema.
    answered_now: bool = Field(default=False, exclude=True)

    def answer_time_s(self) -> float | None:
        if self.answered_at is None:
            return None
        return (self.answered_at - self.raised_at).total_seconds()

    @property
    def counts_for_answer_time(self) -> bool:
        """Safety alarms from devices: what the municipality's answer time is about."""
        return self.source == "device" and self.kind.startswith("alarm.") and not self.test


# The person's flags as `alarms.people.lookups_psycopg` writes them (inlined by PostgreSQL,
# migration 0019: as scalar function calls they were most of a listed alarm's database time).
COLUMNS = f"""
a.alarm_id, a.site, a.device_id, a.kind, a.priority, a.state, a.source, a.raised_at,
a.device_ts, a.last_event_at, a.event_count, a.reset_at_device, a.answered_at, a.answered_by,
a.escalated_at, a.resolved_at, a.outcome, a.details, a.test,
coalesce(a.handled_by, a.answered_by) AS handled_by, a.incident_id,
extract(epoch FROM coalesce(a.answered_at, now()) - a.raised_at)::float8 AS waiting_s,
coalesce(NOT {person_column("has_access", "a.device_id")}, false) AS no_access,
{absent_at("a.device_id", "a.raised_at")} AS absent
"""

LIST_ALARMS = f"""
SELECT {COLUMNS} FROM alarms a
WHERE a.state = ANY(%(states)s) AND (%(site)s::text IS NULL OR a.site = %(site)s)
ORDER BY a.priority, a.raised_at, a.alarm_id
LIMIT %(limit)s
"""  # noqa: S608 - COLUMNS is a constant

GET_ALARM = f"SELECT {COLUMNS} FROM alarms a WHERE a.alarm_id = %s"  # noqa: S608
GET_ALARMS = f"SELECT {COLUMNS} FROM alarms a WHERE a.alarm_id = ANY(%s)"  # noqa: S608

MOVES = AuditedMoves(
    lifecycle=LIFECYCLE,
    subject_type="alarm",
    table="alarms",
    alias="a",
    columns=f"{COLUMNS}, a.answered_at = now() AS answered_now",
    not_found=AlarmNotFound,
    case_of="a.alarm_id",
    case_actions={
        Action.ANSWER: "answered",
        Action.ESCALATE: "escalated",
        Action.RESOLVE: "resolved",
    },
)

CREATE_ESCALATION = """
SELECT (e).escalation_id FROM (
    SELECT larm_create_escalation(%(site)s, %(device_id)s, %(alarm_id)s, NULL, NULL, NULL,
                                  NULL, %(reason)s, %(actor)s, %(ack_s)s) AS e
) created
"""


class Decision(TypedDict, total=False):
    """An operator's decision on an alarm beside its action: who, and its text (an escalation's
    reason, a resolve's outcome code) and note (free text for the case). One alarm's (`act`) or
    every alarm's of an incident (`incidents_psycopg.act_on_all`)."""

    by: Required[Actor]
    text: str | None
    note: str | None


def from_alarm_row(values: tuple[Any, ...]) -> AlarmRow:
    return from_row(AlarmRow, values)


def states_for(filter_: str) -> list[str]:
    if filter_ == "open":
        return sorted(s.value for s in OPEN_STATES)
    if filter_ == "all":
        return [s.value for s in AlarmState]
    return [AlarmState(filter_).value]


async def list_alarms(
    conn: AsyncConn, *, state: str = "open", site: str | None = None, limit: int = 500
) -> list[AlarmRow]:
    cur = await conn.execute(
        LIST_ALARMS, {"states": states_for(state), "site": site, "limit": limit}
    )
    return [from_alarm_row(r) for r in await cur.fetchall()]


async def get_alarm(conn: AsyncConn, alarm_id: uuid.UUID) -> AlarmRow | None:
    cur = await conn.execute(GET_ALARM, (alarm_id,))
    row = await cur.fetchone()
    return from_alarm_row(row) if row else None


async def get_alarms(conn: AsyncConn, alarm_ids: Sequence[uuid.UUID]) -> list[AlarmRow]:
    """The alarms of `alarm_ids` that exist, in no particular order."""
    cur = await conn.execute(GET_ALARMS, (list(alarm_ids),))
    return [from_alarm_row(row) for row in await cur.fetchall()]


async def act(
    conn: AsyncConn,
    alarm_id: uuid.UUID,
    action: Action,
    *,
    ack_s: float = 600.0,
    **decision: Unpack[Decision],
) -> AlarmRow:
    """Apply one human decision; raises AlarmNotFound or TransitionError (nothing changed).
    The audit row keeps the outcome code only; the case step also the reason or the note (free
    text about a person, erased with them). An escalation is created with `ack_s` to
    acknowledge it."""
    by, text, note = decision["by"], decision.get("text"), decision.get("note")
    resolving = action is Action.RESOLVE
    audit = {"outcome": text} if resolving and text else {}
    case = {"reason": text} if action is Action.ESCALATE else dict(audit)
    if note:
        case["note"] = note
    async with conn.transaction():
        row = await MOVES.apply(
            conn,
            alarm_id,
            action,
            by=by,
            text=text if resolving else None,
            details=audit,
            case_detail=case,
        )
        alarm = from_alarm_row(row[:-1]).model_copy(update={"answered_now": bool(row[-1])})
        if action is not Action.ESCALATE:
            return alarm
        cur = await conn.execute(
            CREATE_ESCALATION,
            {
                "site": alarm.site,
                "device_id": alarm.device_id,
                "alarm_id": alarm.alarm_id,
                "reason": text or "sent by the operator",
                "actor": by.name,
                "ack_s": ack_s,
            },
        )
        created = await cur.fetchone()
        return alarm.model_copy(update={"escalation_id": created[0] if created else None})


ANSWER_TIMES = """
SELECT answered_at, extract(epoch FROM answered_at - raised_at)::float8
FROM alarms
WHERE answered_at >= %(since)s AND answered_at < %(until)s
  AND (%(site)s::text IS NULL OR site = %(site)s)
  AND source = 'device' AND kind LIKE 'alarm.%%' AND NOT test
ORDER BY answered_at
"""


async def answer_times(
    conn: AsyncConn, *, since: datetime, until: datetime, site: str | None
) -> list[tuple[datetime, float]]:
    """(answered_at, answer time in s) of safety alarms answered in [since, until)."""
    cur = await conn.execute(ANSWER_TIMES, {"since": since, "until": until, "site": site})
    return [(r[0], float(r[1])) for r in await cur.fetchall()]
