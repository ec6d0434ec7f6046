"""Supervision plans, checks and night reports for the API (async psycopg)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from alarms.night import checks_psycopg as checks
from alarms.night.rules import Plan
from larmkedja.db import AsyncConn, from_row

UPSERT_PLAN = """
INSERT INTO supervision_plans (plan_id, device_id, site, checks, window_minutes, timezone,
                               paused_nights, updated_by)
VALUES (%(plan_id)s, %(device_id)s, %(site)s, %(checks)s, %(window_minutes)s, %(timezone)s,
        %(paused_nights)s, %(actor)s)
ON CONFLICT (plan_id) DO UPDATE SET
    device_id = EXCLUDED.device_id, site = EXCLUDED.site, checks = EXCLUDED.checks,
    window_minutes = EXCLUDED.window_minutes, timezone = EXCLUDED.timezone,
    paused_nights = EXCLUDED.paused_nights, updated_by = EXCLUDED.updated_by,
    updated_at = now(), version = supervision_plans.version + 1
RETURNING (xmax::text = '0') AS created, now()
"""
AUDIT = """
INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
VALUES (%s, %s, %s, %s, %s, %s)
"""
GET_PLAN = f"SELECT {checks.PLAN_COLUMNS} FROM supervision_plans WHERE plan_id = %s"  # noqa: S608


class CheckView(BaseModel):
    """One expected check of a night and what became of it (the API's schema)."""

    model_config = ConfigDict(frozen=True)

    check_id: int
    plan_id: str
    night: date
    local_time: str
    site: str
    device_id: str
    scheduled_for: datetime
    window_end: datetime
    state: str = Field(description="pending, done_ok, not_seen, rechecked_ok, missed or escalated")
    result_at: datetime | None
    outcome: str | None
    operator: str | None = Field(description="who looked (no images are ever stored)")
    look_s: float | None = Field(description="for how long")
    recheck_due_at: datetime | None
    rechecked_at: datetime | None
    recheck_outcome: str | None
    late_result_at: datetime | None
    escalation_id: uuid.UUID | None


CHECKS = """
SELECT check_id, plan_id, night, local_time, site, device_id, scheduled_for, window_end, state,
       result_at, outcome, operator, look_s, recheck_due_at, rechecked_at, recheck_outcome,
       late_result_at, escalation_id
FROM supervision_checks
WHERE night = %(night)s AND (%(site)s::text IS NULL OR site = %(site)s)
  AND (%(plan_id)s::text IS NULL OR plan_id = %(plan_id)s)
ORDER BY scheduled_for, plan_id
"""


async def upsert_plan(conn: AsyncConn, plan: Plan, *, actor: str, role: str) -> bool:
    """Store the plan and replace its checks that have not begun; True if it is new."""
    async with conn.transaction():
        cur = await conn.execute(
            UPSERT_PLAN,
            {
                "plan_id": plan.plan_id,
                "device_id": plan.device_id,
                "site": plan.site,
                "checks": list(plan.checks),
                "window_minutes": plan.window_minutes,
                "timezone": plan.timezone,
                "paused_nights": sorted(plan.paused_nights),
                "actor": actor,
            },
        )
        row = await cur.fetchone()
        created, now = (bool(row[0]), row[1]) if row else (False, datetime.now().astimezone())
        await conn.execute(checks.DROP_FUTURE_CHECKS, (plan.plan_id,))
        async with conn.cursor() as c:
            await c.executemany(checks.INSERT_CHECK, checks.check_rows(plan, now))
        await conn.execute(
            AUDIT,
            (
                actor,
                role,
                "plan.create" if created else "plan.update",
                "plan",
                plan.plan_id,
                Jsonb(
                    {
                        "checks": list(plan.checks),
                        "window_minutes": plan.window_minutes,
                        "paused_nights": [d.isoformat() for d in sorted(plan.paused_nights)],
                    }
                ),
            ),
        )
    return created


async def get_plan(conn: AsyncConn, plan_id: str) -> Plan | None:
    cur = await conn.execute(GET_PLAN, (plan_id,))
    row = await cur.fetchone()
    return checks.plan_from_row(row) if row else None


async def list_checks(
    conn: AsyncConn, *, night: date, site: str | None, plan_id: str | None = None
) -> list[CheckView]:
    cur = await conn.execute(CHECKS, {"night": night, "site": site, "plan_id": plan_id})
    return [from_row(CheckView, r) for r in await cur.fetchall()]


REPORT_CHECKS = """
SELECT count(*),
       count(*) FILTER (WHERE state = 'done_ok'),
       count(*) FILTER (WHERE state = 'rechecked_ok'),
       count(*) FILTER (WHERE recheck_due_at IS NOT NULL),
       count(*) FILTER (WHERE state = 'missed'),
       count(*) FILTER (WHERE state = 'escalated'),
       count(*) FILTER (WHERE state IN ('pending', 'not_seen'))
FROM supervision_checks
WHERE night = %(night)s AND (%(site)s::text IS NULL OR site = %(site)s)
"""
REPORT_ESCALATIONS = """
SELECT count(*), count(*) FILTER (WHERE state = 'completed'), count(arrived_at),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM arrived_at - created_at)),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM arrived_at - created_at)),
       max(extract(epoch FROM arrived_at - created_at))::float8
FROM escalations
WHERE night = %(night)s AND (%(site)s::text IS NULL OR site = %(site)s)
"""
REPORT_PAUSED = """
SELECT count(*) FROM supervision_plans
WHERE %(night)s = ANY(paused_nights) AND (%(site)s::text IS NULL OR site = %(site)s)
"""


class NightReport(BaseModel):
    """A night's checks and the patrol's arrivals (the API's schema)."""

    model_config = ConfigDict(frozen=True)

    night: date
    site: str | None
    planned: int
    done_on_time: int
    rechecked_ok: int
    rechecks: int
    missed: int
    escalated_checks: int
    open: int
    paused_plans: int
    escalations: int
    escalations_completed: int
    arrival_count: int
    arrival_p50_s: float | None
    arrival_p90_s: float | None
    arrival_max_s: float | None


async def night_report(conn: AsyncConn, *, night: date, site: str | None) -> NightReport:
    params = {"night": night, "site": site}
    checks = await (await conn.execute(REPORT_CHECKS, params)).fetchone()
    escalations = await (await conn.execute(REPORT_ESCALATIONS, params)).fetchone()
    paused = await (await conn.execute(REPORT_PAUSED, params)).fetchone()
    return from_row(
        NightReport,
        (night, site, *(checks or (0,) * 7), paused[0] if paused else 0,
         *(escalations or (0, 0, 0, None, None, None))),
    )  # fmt: skip
