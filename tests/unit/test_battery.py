"""Battery estimates: monotone in the discharge rate, the spec without data, never negative."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alarms.devices.battery import (
    MIN_RATE_PCT_PER_H,
    RateSource,
    Reading,
    below_spec,
    estimate,
    hours_left,
    observed_rate,
)

T0 = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
percents = st.floats(min_value=-10, max_value=110, allow_nan=False)
rates = st.floats(min_value=0, max_value=200, allow_nan=False)


def drain(rate: float, hours: int, start: float = 100.0) -> list[Reading]:
    return [Reading(at=T0 + timedelta(hours=h), percent=start - rate * h) for h in range(hours)]


@given(percent=percents, r1=rates, r2=rates)
def test_hours_left_is_monotone_in_the_rate_and_never_negative(
    percent: float, r1: float, r2: float
) -> None:
    slow, fast = sorted([r1, r2])
    assert hours_left(percent=percent, rate_pct_per_h=slow) >= hours_left(
        percent=percent, rate_pct_per_h=fast
    )
    assert hours_left(percent=percent, rate_pct_per_h=fast) >= 0


@given(percent=st.floats(min_value=0, max_value=100), spec=st.floats(min_value=1, max_value=200))
def test_without_data_the_spec_is_assumed(percent: float, spec: float) -> None:
    est = estimate(percent=percent, outage_readings=[], known_rate=None, spec_hours=spec)
    assert est.source is RateSource.SPEC
    assert abs(est.full_battery_hours - spec) < 1e-6
    assert abs(est.hours_left - spec * percent / 100) < 1e-6
    assert not below_spec(est, spec_hours=spec, on_mains=True, min_hours_left=0)


@given(rate=st.floats(min_value=0.5, max_value=20), hours=st.integers(min_value=2, max_value=40))
def test_an_observed_linear_drain_is_measured(rate: float, hours: int) -> None:
    readings = drain(rate, hours)
    measured = observed_rate(readings, min_span_h=0.25)
    assert measured is not None and abs(measured - rate) < 1e-6
    est = estimate(
        percent=readings[-1].percent, outage_readings=readings, known_rate=None, spec_hours=48
    )
    assert est.source is RateSource.OBSERVED
    assert abs(est.full_battery_hours - 100 / rate) < 1e-6


def test_too_short_a_span_or_one_reading_is_not_enough() -> None:
    assert observed_rate([Reading(at=T0, percent=90)], min_span_h=0.25) is None
    close = [Reading(at=T0, percent=90), Reading(at=T0 + timedelta(minutes=5), percent=89)]
    assert observed_rate(close, min_span_h=0.25) is None


def test_a_learned_rate_is_used_on_mains_and_a_weak_battery_is_below_spec() -> None:
    est = estimate(percent=100, outage_readings=[], known_rate=2.5, spec_hours=48)
    assert est.source is RateSource.LEARNED and est.full_battery_hours == 40
    assert below_spec(est, spec_hours=48, on_mains=True, min_hours_left=12)


def test_charging_or_flat_readings_fall_back_and_stay_finite() -> None:
    charging = drain(-2.0, 5, start=50)
    est = estimate(percent=58, outage_readings=charging, known_rate=None, spec_hours=48)
    assert est.source is RateSource.SPEC
    assert est.hours_left <= 100 / MIN_RATE_PCT_PER_H


def test_on_battery_little_left_is_below_spec_even_with_a_good_battery() -> None:
    readings = drain(1.0, 10)  # 100 h full battery
    est = estimate(percent=8, outage_readings=readings, known_rate=None, spec_hours=48)
    assert not below_spec(est, spec_hours=48, on_mains=True, min_hours_left=12)
    assert below_spec(est, spec_hours=48, on_mains=False, min_hours_left=12)
