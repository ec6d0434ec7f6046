"""Answer-time statistics, pure: distributions, not only the mean (domain: 60 s / 180 s, p90).

Percentiles interpolate linearly between the closest ranks (what PostgreSQL's percentile_cont
and numpy's default do): p(q) of sorted x[0..n-1] is at position q·(n-1).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from datetime import datetime, tzinfo

from pydantic import BaseModel, ConfigDict


class AnswerDistribution(BaseModel):
    """The distribution of answer times: the KPI's and the service-level report's."""

    model_config = ConfigDict(frozen=True)

    count: int
    mean_s: float | None
    p50_s: float | None
    p90_s: float | None
    p95_s: float | None
    max_s: float | None
    within_60s_ratio: float | None
    within_180s_ratio: float | None


class AnswerTimeStats(AnswerDistribution):
    """The distribution against the target (also the API's schema)."""

    target_mean_s: float
    mean_above_target: bool


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        raise ValueError("no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be within [0, 1]")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def summarize(durations_s: Sequence[float], *, target_s: float) -> AnswerTimeStats:
    values = sorted(durations_s)
    n = len(values)
    if n == 0:
        return AnswerTimeStats(
            count=0,
            mean_s=None,
            p50_s=None,
            p90_s=None,
            p95_s=None,
            max_s=None,
            within_60s_ratio=None,
            within_180s_ratio=None,
            target_mean_s=target_s,
            mean_above_target=False,
        )
    mean = math.fsum(values) / n
    return AnswerTimeStats(
        count=n,
        mean_s=mean,
        p50_s=percentile(values, 0.50),
        p90_s=percentile(values, 0.90),
        p95_s=percentile(values, 0.95),
        max_s=values[-1],
        within_60s_ratio=sum(1 for v in values if v <= 60.0) / n,
        within_180s_ratio=sum(1 for v in values if v <= 180.0) / n,
        target_mean_s=target_s,
        mean_above_target=mean > target_s,
    )


class AlertChange(enum.Enum):
    RAISE = "raise"
    RESOLVE = "resolve"


def mean_alert_change(*, active: bool, mean_s: float | None, target_s: float) -> AlertChange | None:
    """Raise when the rolling mean is above the target, resolve when it is not (no answered
    alarm in the window counts as not above)."""
    above = mean_s is not None and mean_s > target_s
    if above and not active:
        return AlertChange.RAISE
    if not above and active:
        return AlertChange.RESOLVE
    return None


def bucket_start(at: datetime, *, bucket: str, tz: tzinfo) -> datetime:
    """Start of the hour or the local day that `at` falls in."""
    local = at.astimezone(tz)
    if bucket == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown bucket {bucket!r}")


def by_bucket(
    answers: Sequence[tuple[datetime, float]], *, bucket: str, tz: tzinfo, target_s: float
) -> list[tuple[datetime, AnswerTimeStats]]:
    """Statistics per hour or per local day, by when each alarm was answered."""
    groups: dict[datetime, list[float]] = {}
    for answered_at, duration in answers:
        groups.setdefault(bucket_start(answered_at, bucket=bucket, tz=tz), []).append(duration)
    return [(start, summarize(groups[start], target_s=target_s)) for start in sorted(groups)]
