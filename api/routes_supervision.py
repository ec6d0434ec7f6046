"""Night digital supervision: plans, the checks of a night, and the night report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Path, Request

from alarms.night import plans_psycopg as q
from alarms.night.rules import Plan, night_of, nights_around, parse_local_time
from alarms.people import audit_psycopg
from api.auth import Permission, Principal, require
from api.errors import ApiError, invalid
from api.models import IsoDate, PlanIn, PlanOut, problems
from api.params import SiteFilter

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])
Writer = Annotated[Principal, Depends(require(Permission.PLANS_WRITE))]
Reader = Annotated[Principal, Depends(require(Permission.SUPERVISION_READ))]
Reporter = Annotated[Principal, Depends(require(Permission.REPORTS_READ))]
PlanId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]

ERRORS = problems(401, 403, 404)


def _plan(plan_id: str, body: PlanIn) -> Plan:
    try:
        ZoneInfo(body.timezone)
        for text in body.checks:
            parse_local_time(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise invalid(("body",), str(exc)) from None
    if len(set(body.checks)) != len(body.checks):
        raise invalid(("body", "checks"), "a check time is listed twice")
    return Plan(plan_id=plan_id, **body.model_dump())


async def _out(request: Request, plan: Plan, *, created: bool) -> PlanOut:
    upcoming = []
    async with request.app.state.pool.connection() as conn:
        for night in nights_around(datetime.now(UTC), ZoneInfo(plan.timezone)):
            upcoming += await q.list_checks(conn, night=night, site=None, plan_id=plan.plan_id)
    return PlanOut(
        **plan.model_dump(exclude={"paused_nights"}),
        paused_nights=sorted(plan.paused_nights),
        created=created,
        checks_upcoming=upcoming,
    )


@router.put("/plans/{plan_id}", response_model=PlanOut, responses=ERRORS)
async def put_plan(request: Request, principal: Writer, plan_id: PlanId, body: PlanIn) -> PlanOut:
    """Create or replace a plan: its checks that have not begun are replaced at once."""
    plan = _plan(plan_id, body)
    async with request.app.state.pool.connection() as conn:
        created = await q.upsert_plan(conn, plan, actor=principal.name, role=principal.role.value)
    return await _out(request, plan, created=created)


@router.get("/plans/{plan_id}", response_model=PlanOut, responses=ERRORS)
async def get_plan(request: Request, principal: Reader, plan_id: PlanId) -> PlanOut:
    async with request.app.state.pool.connection() as conn, conn.transaction():
        plan = await q.get_plan(conn, plan_id)
        await audit_psycopg.record(
            conn, by=principal.actor, action="plan.read", subject=("plan", plan_id)
        )
    if plan is None:
        raise ApiError(status=404, code="not_found", message="no such plan")
    return await _out(request, plan, created=False)


@router.get("/checks", response_model=list[q.CheckView], responses=ERRORS)
async def checks(
    request: Request, principal: Reader, night: IsoDate | None = None, site: SiteFilter = None
) -> list[q.CheckView]:
    """Each expected check of a night (default: the current one) and its state."""
    tz = ZoneInfo(request.app.state.settings.timezone)
    the_night = night or night_of(datetime.now(UTC), tz)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        rows = await q.list_checks(conn, night=the_night, site=site)
        await audit_psycopg.record(
            conn,
            by=principal.actor,
            action="checks.read",
            subject=("night", the_night.isoformat()),
            details={"site": site},
        )
    return rows


@router.get("/report", response_model=q.NightReport, responses=ERRORS)
async def report(
    request: Request, principal: Reporter, night: IsoDate | None = None, site: SiteFilter = None
) -> q.NightReport:
    """A night's checks planned, done on time, re-checked, missed and escalated, and the
    patrol's time from escalation to arrival (p50, p90, max)."""
    tz = ZoneInfo(request.app.state.settings.timezone)
    the_night = night or night_of(datetime.now(UTC), tz)
    async with request.app.state.pool.connection() as conn:
        result = await q.night_report(conn, night=the_night, site=site)
    return result
