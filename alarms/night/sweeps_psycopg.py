"""Engine sweeps of night supervision: the checks of the coming nights materialised, windows and
re-checks that ran out, and cameras that cannot be looked through during their night."""

from __future__ import annotations

from datetime import datetime

from alarms.night.checks_psycopg import (
    ALL_PLANS,
    CHECK_COLUMNS,
    DROP_ABSENT_CHECKS,
    INSERT_CHECK,
    CheckRules,
    check_from_row,
    check_rows,
    plan_from_row,
)
from alarms.night.rules import on_deadline
from larmkedja.db import Conn
from larmkedja.settings import Settings


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


def _due(state: str, deadline: str) -> str:
    """The checks in `state` whose `deadline` column has passed (a batch, skipping rows that
    ingest holds: their result is being stored)."""
    return f"""
SELECT {CHECK_COLUMNS}
FROM supervision_checks c JOIN supervision_plans p USING (plan_id)
WHERE c.state = '{state}' AND c.{deadline} <= now()
ORDER BY c.{deadline} LIMIT 1000
FOR UPDATE OF c SKIP LOCKED
"""  # noqa: S608 - constants only


DUE_WINDOWS = _due("pending", "window_end")
DUE_RECHECKS = _due("not_seen", "recheck_deadline")


class CheckDeadlineSweep:
    """No result by the end of the window → missed; no re-check in time → escalated. A check
    whose person is away at its time is taken away instead (an absence written after it was
    made; the absence's own statement takes those it finds)."""

    name = "supervision_deadlines"

    def __init__(self, *, settings: Settings) -> None:
        self._rules = CheckRules(settings=settings)

    def run(self, conn: Conn) -> int:
        fired = 0
        with conn.cursor() as cur:
            now_row = cur.execute("SELECT now()").fetchone()
            at: datetime = now_row[0] if now_row else datetime.now().astimezone()
            cur.execute(DROP_ABSENT_CHECKS)
            for query in (DUE_WINDOWS, DUE_RECHECKS):
                for row in cur.execute(query).fetchall():
                    check = check_from_row(row)
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
