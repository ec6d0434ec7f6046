"""Answer-time statistics against an independent computation (statistics.quantiles)."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alarms.queue.answer_time import AlertChange, by_bucket, mean_alert_change, summarize

durations = st.lists(
    st.floats(min_value=0, max_value=3600, allow_nan=False, allow_infinity=False), max_size=200
)


def reference(values: list[float], q: int) -> float:
    """p(q) with linear interpolation, computed another way."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@given(values=durations, target=st.floats(min_value=1, max_value=600))
def test_summary_equals_an_independent_computation(values: list[float], target: float) -> None:
    stats = summarize(values, target_s=target)
    assert stats.count == len(values)
    assert stats.target_mean_s == target
    if not values:
        assert stats.mean_s is None and stats.p90_s is None and not stats.mean_above_target
        return
    mean = statistics.fmean(values)
    assert stats.mean_s == pytest.approx(mean, rel=1e-9, abs=1e-9)
    for q, got in [(50, stats.p50_s), (90, stats.p90_s), (95, stats.p95_s)]:
        assert got == pytest.approx(reference(values, q), rel=1e-9, abs=1e-6)
    assert stats.max_s == max(values)
    assert stats.within_60s_ratio == len([v for v in values if v <= 60]) / len(values)
    assert stats.within_180s_ratio == len([v for v in values if v <= 180]) / len(values)
    assert stats.mean_above_target == (stats.mean_s is not None and stats.mean_s > target)


def test_the_33_second_target_example() -> None:
    stats = summarize([10, 20, 30, 40, 200], target_s=33)
    assert stats.mean_s == 60 and stats.mean_above_target
    assert stats.p50_s == 30 and stats.max_s == 200 and stats.within_60s_ratio == 0.8


@given(active=st.booleans(), mean=st.none() | st.floats(0, 500), target=st.floats(1, 100))
def test_the_alert_changes_exactly_at_the_crossing(
    active: bool, mean: float | None, target: float
) -> None:
    change = mean_alert_change(active=active, mean_s=mean, target_s=target)
    above = mean is not None and mean > target
    after = {AlertChange.RAISE: True, AlertChange.RESOLVE: False, None: active}[change]
    assert after == above
    assert (change is None) == (active == above)


def test_buckets_by_local_day_and_hour() -> None:
    tz = ZoneInfo("Europe/Stockholm")
    base = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 local
    answers = [(base, 10.0), (base + timedelta(hours=1), 50.0), (base + timedelta(hours=2), 30.0)]
    days = by_bucket(answers, bucket="day", tz=tz, target_s=33)
    assert [d.isoformat() for d, _ in days] == [
        "2026-11-23T00:00:00+01:00",
        "2026-11-24T00:00:00+01:00",
    ]
    assert [s.count for _, s in days] == [1, 2]
    hours = by_bucket(answers, bucket="hour", tz=tz, target_s=33)
    assert len(hours) == 3 and hours[1][1].mean_above_target
