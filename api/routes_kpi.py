"""Answer-time KPIs (contract §3): the distribution, not only the mean."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request

from alarms.queue import queries_psycopg as q
from alarms.queue.answer_time import by_bucket, summarize
from api.auth import Permission, Principal, require
from api.models import AnswerTimeBucket, AnswerTimeOut, IsoDateTime, Problem
from api.params import SiteFilter

router = APIRouter(prefix="/api/v1", tags=["kpi"])
Reader = Annotated[Principal, Depends(require(Permission.KPI_READ))]
MAX_RANGE = timedelta(days=400)


@router.get(
    "/kpi/answer-time",
    response_model=AnswerTimeOut,
    responses={401: {"model": Problem}, 403: {"model": Problem}},
)
async def answer_time(
    request: Request,
    principal: Reader,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    site: SiteFilter = None,
    bucket: Literal["hour", "day"] | None = None,
) -> AnswerTimeOut:
    """Safety alarms answered in [since, until): count, mean, p50/p90/p95, max, share within
    60 s and 180 s, against the target. Defaults to the rolling window (LARM_ANSWER_WINDOW_S)
    up to now; at most 400 days (an earlier `since` is moved, and the answer says the period it
    used). `bucket=hour|day` adds the same per hour or per local day."""
    settings = request.app.state.settings
    end = until or datetime.now(UTC)
    # At most 400 days at a time: an earlier `since` is taken as `until` - 400 days, and the
    # answer's `since` says which was used; `since` at or after `until` is an empty period.
    start = max(since or end - timedelta(seconds=settings.answer_window_s), end - MAX_RANGE)
    start = min(start, end)
    async with request.app.state.pool.connection() as conn:
        answers = await q.answer_times(conn, since=start, until=end, site=site)
    target = settings.answer_target_s
    stats = summarize([d for _, d in answers], target_s=target)
    buckets = None
    if bucket is not None:
        tz = ZoneInfo(settings.timezone)
        buckets = [
            AnswerTimeBucket(start=b_start, **b_stats.model_dump())
            for b_start, b_stats in by_bucket(answers, bucket=bucket, tz=tz, target_s=target)
        ]
    return AnswerTimeOut(
        since=start,
        until=end,
        site=site,
        buckets=buckets,
        **stats.model_dump(),
    )
