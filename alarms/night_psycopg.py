"""Night supervision on PostgreSQL: materialising checks, applying results (in the ingest
transaction) and deadlines (engine sweeps). The rules themselves are in `alarms.night`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from psycopg.types.json import Jsonb

from alarms.night import (
    CheckState,
    Decision,
    Escalate,
    Outcome,
    Plan,
    expected_checks,
    nights_around,
    on_deadline,
    on_result,
)
from larmkedja.db import Conn, Cursor
from larmkedja.events import CheckResultData, Kind, ReceivedEvent
from larmkedja.settings import Settings

log = logging.getLogger(__name__)

INSERT_CHECK = """
INSERT INTO supervision_checks (plan_id, night, local_time, site, device_id, scheduled_for,
                                window_end)
SELECT %(plan_id)s, %(night)s, %(local_time)s, %(site)s, %(device_id)s, %(scheduled_for)s,
       %(window_end)s
WHERE %(window_end)s > now()
ON CONFLICT (plan_id, night, local_time) DO NOTHING
"""
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


class MaterialiseSweep:
    """Keeps the checks of the current and the next night in the table (every minute)."""

    name = "supervision_materialise"

    def __init__(self, *, every_s: float = 60.0) -> None:
        self._every_s = every_s
        self._last: datetime | None = None

    def run(self, conn: Conn) -> int:
        now = conn.execute("SELECT now()").fetchone()
        if now is None or (self._last and (now[0] - self._last).total_seconds() < self._every_s):
            return 0
        self._last = now[0]
        plans = [plan_from_row(r) for r in conn.execute(ALL_PLANS).fetchall()]
        made = 0
        with conn.cursor() as cur:
            for plan in plans:
                for params in check_rows(plan, now[0]):
                    cur.execute(INSERT_CHECK, params)
                    made += cur.rowcount
        return made


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckRow:
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
FIND_FOR_RESULT = f"""
SELECT {CHECK_COLUMNS}
FROM supervision_checks c JOIN supervision_plans p USING (plan_id)
WHERE c.plan_id = %(plan_id)s
  AND (abs(extract(epoch FROM c.scheduled_for - %(sf)s)) <= p.window_minutes * 60
       OR (c.state = 'not_seen'
           AND abs(extract(epoch FROM c.recheck_due_at - %(sf)s)) <= p.window_minutes * 60))
ORDER BY abs(extract(epoch FROM c.scheduled_for - %(sf)s))
LIMIT 1
FOR UPDATE OF c
"""  # noqa: S608 - constant columns
DUE_WINDOWS = f"""
SELECT {CHECK_COLUMNS}
FROM supervision_checks c JOIN supervision_plans p USING (plan_id)
WHERE c.state = 'pending' AND c.window_end <= now()
ORDER BY c.window_end LIMIT 1000
FOR UPDATE OF c SKIP LOCKED
"""  # noqa: S608 - constant columns
DUE_RECHECKS = f"""
SELECT {CHECK_COLUMNS}
FROM supervision_checks c JOIN supervision_plans p USING (plan_id)
WHERE c.state = 'not_seen' AND c.recheck_deadline <= now()
ORDER BY c.recheck_deadline LIMIT 1000
FOR UPDATE OF c SKIP LOCKED
"""  # noqa: S608 - constant columns

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


def _check(row: Sequence[Any]) -> CheckRow:
    return CheckRow(
        check_id=row[0],
        plan_id=row[1],
        night=row[2],
        site=row[3],
        device_id=row[4],
        scheduled_for=row[5],
        window_end=row[6],
        state=CheckState(row[7]),
        recheck_deadline=row[8],
        window_s=float(row[9]),
    )


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
        subject = f"check:{check.check_id}"
        if result is not None:
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
        else:
            cur.execute(SET_STATE, (decision.state.value, check.check_id))
        details = {
            "check_id": check.check_id,
            "plan_id": check.plan_id,
            "device_id": check.device_id,
            "night": check.night.isoformat(),
            "scheduled_for": check.scheduled_for.isoformat(),
        }
        if decision.state is CheckState.NOT_SEEN:
            cur.execute(
                RAISE_ALERT,
                (check.site, "supervision.not_seen", "warning", subject, Jsonb(details)),
            )
        elif decision.state is CheckState.RECHECKED_OK:
            cur.execute(
                RESOLVE_ALERT, ("supervision.not_seen", subject, Jsonb({"rechecked": True}))
            )
        if decision.escalate is Escalate.MISSED:
            cur.execute(
                RAISE_ALERT,
                (check.site, "supervision.check_missed", "critical", subject, Jsonb(details)),
            )
        alarm_id = self._alarm(cur, check, at, details) if decision.alarm else None
        if decision.escalate is not None:
            self._escalate(cur, check, decision.escalate, alarm_id)

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


class SupervisionProcessor:
    """`check.result` events, in the ingest transaction: each matches one expected check."""

    def __init__(self, *, settings: Settings) -> None:
        self._rules = CheckRules(settings=settings)

    def process(self, cur: Cursor, notable: Sequence[ReceivedEvent]) -> None:
        for received in notable:
            if received.event.kind is Kind.CHECK_RESULT:
                self._result(cur, received)

    def _result(self, cur: Cursor, r: ReceivedEvent) -> None:
        data = r.event.typed_data()
        if not isinstance(data, CheckResultData):  # pragma: no cover - the parser checked it
            return
        cur.execute(FIND_FOR_RESULT, {"plan_id": data.plan_id, "sf": data.scheduled_for})
        row = cur.fetchone()
        if row is None or row[4] != r.event.device_id:
            why = "no such check" if row is None else "sent by another device than the plan's"
            details = Jsonb(
                {
                    "plan_id": data.plan_id,
                    "device_id": r.event.device_id,
                    "scheduled_for": data.scheduled_for.isoformat(),
                    "why": why,
                }
            )
            cur.execute(
                RAISE_ALERT,
                (
                    r.site,
                    "supervision.result_unmatched",
                    "warning",
                    f"event:{r.event.event_id}",
                    details,
                ),
            )
            return
        check = _check(row)
        deadline = check.window_end if check.state is CheckState.PENDING else check.recheck_deadline
        decision = on_result(check.state, Outcome(data.outcome.value))
        if decision is None or (deadline is not None and r.received_at > deadline):
            cur.execute(LATE_RESULT, (r.received_at, check.check_id))
            return
        self._rules.apply(cur, check, decision, at=r.received_at, result=data)


class CheckDeadlineSweep:
    """No result by the end of the window → missed; no re-check in time → escalated."""

    name = "supervision_deadlines"

    def __init__(self, *, settings: Settings) -> None:
        self._rules = CheckRules(settings=settings)

    def run(self, conn: Conn) -> int:
        fired = 0
        with conn.cursor() as cur:
            now_row = cur.execute("SELECT now()").fetchone()
            at: datetime = now_row[0] if now_row else datetime.now().astimezone()
            for query in (DUE_WINDOWS, DUE_RECHECKS):
                for row in cur.execute(query).fetchall():
                    check = _check(row)
                    decision = on_deadline(check.state)
                    if decision is not None:
                        self._rules.apply(cur, check, decision, at=at)
                        fired += 1
        return fired


CAMERA_TROUBLE = """
SELECT p.plan_id, p.site, p.device_id, n.night,
       CASE WHEN d.device_id IS NULL OR NOT d.online THEN 'offline'
            WHEN NOT d.link_ok THEN 'link_lost'
            ELSE 'on_battery' END
FROM supervision_plans p
JOIN LATERAL (
    SELECT c.night, min(c.scheduled_for) AS first_at, max(c.window_end) AS last_at
    FROM supervision_checks c
    WHERE c.plan_id = p.plan_id AND c.night >= (now() - interval '2 days')::date
    GROUP BY c.night
) n ON now() BETWEEN n.first_at - make_interval(secs => %(lead_s)s) AND n.last_at
LEFT JOIN devices d ON d.device_id = p.device_id
WHERE d.device_id IS NULL OR NOT d.online OR NOT d.on_mains OR NOT d.link_ok
"""
CAMERA_ESCALATION = """
SELECT (e).escalation_id, (e).created_at = now() FROM (
    SELECT larm_create_escalation(%(site)s, %(device_id)s, NULL, %(plan_id)s, NULL, %(night)s,
                                  %(dedupe)s, %(reason)s, 'system', %(ack_s)s) AS e
) created
"""
CAMERA_REASONS = {
    "offline": "camera offline during the night: physical visit",
    "link_lost": "camera link lost during the night: physical visit",
    "on_battery": "camera on battery (power cut) during the night: physical visit",
}


class CameraSweep:
    """A plan's camera offline, on battery or without link during its night → one visit."""

    name = "supervision_camera"

    def __init__(self, *, settings: Settings) -> None:
        self._params = {"lead_s": settings.night_lead_minutes * 60}
        self._ack_s = settings.patrol_ack_minutes * 60

    def run(self, conn: Conn) -> int:
        fired = 0
        with conn.cursor() as cur:
            for plan_id, site, device_id, night, trouble in cur.execute(
                CAMERA_TROUBLE, self._params
            ).fetchall():
                cur.execute(
                    CAMERA_ESCALATION,
                    {
                        "site": site,
                        "device_id": device_id,
                        "plan_id": plan_id,
                        "night": night,
                        "dedupe": f"camera:{plan_id}:{night.isoformat()}",
                        "reason": CAMERA_REASONS[trouble],
                        "ack_s": self._ack_s,
                    },
                )
                created = cur.fetchone()
                fired += 1 if created and created[1] else 0
        return fired
