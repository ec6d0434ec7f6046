"""Service-level reports for supervisors (contract §6): JSON and CSV of the same figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from alarms.devices import tests_due_psycopg as td
from alarms.reports.rules import ServiceLevel, to_csv
from alarms.reports.service_level_psycopg import service_level
from api.auth import Permission, Principal, require
from api.models import IsoDateTime, problems
from api.params import SiteFilter
from larmkedja.db_connect import longer_deadline

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Reporter = Annotated[Principal, Depends(require(Permission.REPORTS_READ))]

ERRORS = problems(401, 403)
MAX_RANGE = timedelta(days=400)


def _period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """Default: the 30 days up to now. At most 400 days: an earlier `since` is moved (the
    report says the period it used); `since` after `until` is an empty period."""
    end = until or datetime.now(UTC)
    start = max(since or end - timedelta(days=30), end - MAX_RANGE)
    return min(start, end), end


async def _report(
    request: Request,
    principal: Reporter,
    site: SiteFilter = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
) -> ServiceLevel:
    """The report of a site (or all) and period [since, until), for either representation."""
    start, end = _period(since, until)
    async with request.app.state.pool.connection() as conn:
        with longer_deadline(conn):  # a year of a large site is more than one query's while
            return await service_level(
                conn, settings=request.app.state.settings, site=site, since=start, until=end
            )


Report = Annotated[ServiceLevel, Depends(_report)]


@router.get("/service-level", response_model=ServiceLevel, responses=ERRORS)
async def get_service_level(report: Report) -> ServiceLevel:
    """The municipality's service levels for a site (or all) and period [since, until):
    alarms, answer times against 60 s / 180 s, arrivals against the promise, night checks,
    device availability, by hour of day, and every breach with a link to investigate it."""
    return report


@router.get(
    "/service-level.csv",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def get_service_level_csv(report: Report) -> Response:
    """The same report as CSV (`section,name,value,…`; breaches one per row)."""
    site = report.site
    name = f"service-level-{site or 'all'}-{report.since:%Y%m%d}-{report.until:%Y%m%d}.csv"
    return Response(
        to_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/tests-due", response_model=list[td.DueTest], responses=ERRORS)
async def get_tests_due(
    request: Request, principal: Reporter, site: SiteFilter = None
) -> list[td.DueTest]:
    """Devices due a test call: no alarm and no test for LARM_TEST_DUE_DAYS."""
    async with request.app.state.pool.connection() as conn:
        return await td.tests_due(conn, site=site)
