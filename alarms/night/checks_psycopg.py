"""Night supervision on PostgreSQL, shared by ingest (results) and the engine (deadlines): the
expected checks of a plan's nights, and what a decision of `alarms.night.rules` does to a check
(its state, alerts, the escalation and the alarm)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict

from alarms.night.rules import (
    CheckState,
    Decision,
    Escalate,
    Plan,
    expected_checks,
    nights_around,
)
from alarms.people.lookups_psycopg import absent_at
from larmkedja.db import Cursor, from_row
from larmkedja.events import AlertKind, CheckResultData
from larmkedja.settings import Settings

INSERT_CHECK = f"""
INSERT INTO supervision_checks (plan_id, night, local_time, site, device_id, scheduled_for,
                                window_end)
SELECT %(plan_id)s, %(night)s, %(local_time)s, %(site)s, %(device_id)s, %(scheduled_for)s,
       %(window_end)s
WHERE %(window_end)s > now()
  AND NOT {absent_at("%(device_id)s", "%(scheduled_for)s", "%(plan_id)s")}
ON CONFLICT (plan_id, night, local_time) DO NOTHING
"""
# Checks not yet begun whose person is away at their time (an absence written after they were
# made): taken away, not missed. Rows ingest holds (a result being stored) are left.
DROP_ABSENT_CHECKS = f"""
DELETE FROM supervision_checks WHERE check_id IN (
    SELECT c.check_id FROM supervision_checks c
    WHERE c.state = 'pending' AND c.window_end <= now() AND c.escalation_id IS NULL
      AND {absent_at("c.device_id", "c.scheduled_for", "c.plan_id")}
    FOR UPDATE SKIP LOCKED)
"""  # noqa: S608 - SQL of constants
# A changed plan replaces its checks that have not begun; begun or answered ones stay.
DROP_FUTURE_CHECKS = """
DELETE FROM supervision_checks
WHERE plan_id = %s AND state = 'pending' AND scheduled_for > now() AND escalation_id IS NULL
"""
PLAN_COLUMNS = "plan_id, device_id, site, checks, window_minutes, timezone, paused_nights"
ALL_PLANS = f"SELECT {PLAN_COLUMNS} FROM supervision_plans"  # noqa: S608 - constant columns


def plan_from_row(row: Sequence[Any]) -> Plan:
    return Plan(
        plan_id=row[0],
        device_id=row[1],
        site=row[2],
        checks=tuple(row[3]),
        window_minutes=float(row[4]),
        timezone=row[5],
        paused_nights=frozenset(row[6] or ()),
    )


def check_rows(plan: Plan, now: datetime) -> list[dict[str, Any]]:
    """Parameters for INSERT_CHECK: the plan's checks of the current and the next night."""
    rows = []
    for night in nights_around(now, ZoneInfo(plan.timezone)):
        for check in expected_checks(plan, night):
            rows.append(
                {
                    "plan_id": plan.plan_id,
                    "night": check.night,
                    "local_time": check.local_time,
                    "site": plan.site,
                    "device_id": plan.device_id,
                    "scheduled_for": check.scheduled_for,
                    "window_end": check.window_end,
                }
            )
    return rows


class CheckRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    check_id: int
    plan_id: str
    night: date
    site: str
    device_id: str
    scheduled_for: datetime
    window_end: datetime
    state: CheckState
    recheck_deadline: datetime | None
    window_s: float


CHECK_COLUMNS = """
c.check_id, c.plan_id, c.night, c.site, c.device_id, c.scheduled_for, c.window_end, c.state,
c.recheck_deadline, p.window_minutes * 60
"""
RECORD_RESULT = """
UPDATE supervision_checks SET
    state = %(state)s,
    result_at = CASE WHEN %(first)s THEN %(at)s ELSE result_at END,
    outcome = CASE WHEN %(first)s THEN %(outcome)s ELSE outcome END,
    operator = CASE WHEN %(first)s THEN %(operator)s ELSE operator END,
    look_s = CASE WHEN %(first)s THEN %(look_s)s ELSE look_s END,
    rechecked_at = CASE WHEN %(first)s THEN rechecked_at ELSE %(at)s END,
    recheck_outcome = CASE WHEN %(first)s THEN recheck_outcome ELSE %(outcome)s END,
    recheck_operator = CASE WHEN %(first)s THEN recheck_operator ELSE %(operator)s END,
    recheck_due_at = CASE WHEN %(recheck)s THEN %(at)s + make_interval(secs => %(recheck_s)s)
                          ELSE recheck_due_at END,
    recheck_deadline = CASE WHEN %(recheck)s
                            THEN %(at)s + make_interval(secs => %(recheck_s)s + %(window_s)s)
                            ELSE recheck_deadline END
WHERE check_id = %(check_id)s
"""
SET_STATE = "UPDATE supervision_checks SET state = %s WHERE check_id = %s"
LATE_RESULT = "UPDATE supervision_checks SET late_result_at = %s WHERE check_id = %s"
CREATE_ESCALATION = """
SELECT (e).escalation_id FROM (
    SELECT larm_create_escalation(%(site)s, %(device_id)s, %(alarm_id)s, %(plan_id)s,
                                  %(check_id)s, %(night)s, %(dedupe)s, %(reason)s, 'system',
                                  %(ack_s)s) AS e
) created
"""
LINK_ESCALATION = "UPDATE supervision_checks SET escalation_id = %s WHERE check_id = %s"
NEEDS_HELP_ALARM = """
INSERT INTO alarms (site, device_id, kind, priority, source, raised_at, last_event_at,
                    unanswered_due_at, details)
VALUES (%(site)s, %(device_id)s, 'supervision.needs_help', 1, 'supervision', %(at)s, %(at)s,
        %(at)s + make_interval(secs => %(unanswered_s)s), %(details)s)
ON CONFLICT (device_id, kind) WHERE state <> 'resolved'
DO UPDATE SET event_count = alarms.event_count + 1, last_event_at = EXCLUDED.last_event_at,
              version = alarms.version + 1
RETURNING alarm_id
"""
RAISE_ALERT = "SELECT larm_raise_alert(%s, %s, %s, %s, %s)"
RESOLVE_ALERT = "SELECT larm_resolve_alert(%s, %s, %s)"


def check_from_row(row: Sequence[Any]) -> CheckRow:
    return from_row(CheckRow, row)


class CheckRules:
    """Applies a `Decision` to a check: its state, alerts, escalation and alarm."""

    def __init__(self, *, settings: Settings) -> None:
        self._recheck_s = settings.recheck_minutes * 60
        self._ack_s = settings.patrol_ack_minutes * 60
        self._unanswered_s = settings.unanswered_alert_s

    def apply(
        self,
        cur: Cursor,
        check: CheckRow,
        decision: Decision,
        *,
        at: datetime,
        result: CheckResultData | None = None,
    ) -> None:
        self._record(cur, check, decision, at=at, result=result)
        details = {
            "check_id": check.check_id,
            "plan_id": check.plan_id,
            "device_id": check.device_id,
            "night": check.night.isoformat(),
            "scheduled_for": check.scheduled_for.isoformat(),
        }
        self._alerts(cur, check, decision, details)
        alarm_id = self._alarm(cur, check, at, details) if decision.alarm else None
        if decision.escalate is not None:
            self._escalate(cur, check, decision.escalate, alarm_id)

    def _record(
        self,
        cur: Cursor,
        check: CheckRow,
        decision: Decision,
        *,
        at: datetime,
        result: CheckResultData | None,
    ) -> None:
        if result is None:
            cur.execute(SET_STATE, (decision.state.value, check.check_id))
            return
        cur.execute(
            RECORD_RESULT,
            {
                "state": decision.state.value,
                "first": check.state is CheckState.PENDING,
                "at": at,
                "outcome": result.outcome.value,
                "operator": result.operator,
                "look_s": result.duration_s,
                "recheck": decision.recheck,
                "recheck_s": self._recheck_s,
                "window_s": check.window_s,
                "check_id": check.check_id,
            },
        )

    def _alerts(
        self, cur: Cursor, check: CheckRow, decision: Decision, details: dict[str, Any]
    ) -> None:
        subject = f"check:{check.check_id}"
        if decision.state is CheckState.NOT_SEEN:
            kind = AlertKind.SUPERVISION_NOT_SEEN.value
            cur.execute(RAISE_ALERT, (check.site, kind, "warning", subject, Jsonb(details)))
        elif decision.state is CheckState.RECHECKED_OK:
            kind = AlertKind.SUPERVISION_NOT_SEEN.value
            cur.execute(RESOLVE_ALERT, (kind, subject, Jsonb({"rechecked": True})))
        if decision.escalate is Escalate.MISSED:
            kind = AlertKind.SUPERVISION_CHECK_MISSED.value
            cur.execute(RAISE_ALERT, (check.site, kind, "critical", subject, Jsonb(details)))

    def _alarm(self, cur: Cursor, check: CheckRow, at: datetime, details: dict[str, Any]) -> Any:
        cur.execute(
            NEEDS_HELP_ALARM,
            {
                "site": check.site,
                "device_id": check.device_id,
                "at": at,
                "unanswered_s": self._unanswered_s,
                "details": Jsonb(details),
            },
        )
        row = cur.fetchone()
        return row[0] if row else None

    def _escalate(self, cur: Cursor, check: CheckRow, why: Escalate, alarm_id: Any) -> None:
        cur.execute(
            CREATE_ESCALATION,
            {
                "site": check.site,
                "device_id": check.device_id,
                "alarm_id": alarm_id,
                "plan_id": check.plan_id,
                "check_id": check.check_id,
                "night": check.night,
                "dedupe": f"check:{check.check_id}",
                "reason": why.value,
                "ack_s": self._ack_s,
            },
        )
        row = cur.fetchone()
        if row and row[0]:
            cur.execute(LINK_ESCALATION, (row[0], check.check_id))
