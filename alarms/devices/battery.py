"""Battery backup estimates, pure. The municipality promises 48 h on battery in a power cut.

From the `battery.report`s a device sends while on battery (percent over time), the discharge
rate is the least-squares slope. With too little data (fewer than two reports, or less than
`min_span_h` between the first and the last) the spec is assumed: a full battery lasts
`spec_hours`, i.e. 100 / spec_hours % per hour. The last observed rate is kept per device and
used for the estimate while it is on mains (what an outage starting now would give).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

# Below this (in % per hour) a device is not measurably discharging; the spec is assumed.
MIN_RATE_PCT_PER_H = 0.05


class RateSource(enum.StrEnum):
    OBSERVED = "observed"  # from this outage's reports
    LEARNED = "learned"  # from an earlier outage of the same device
    SPEC = "spec"  # nothing known: the battery is assumed to meet its spec


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    at: datetime
    percent: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    rate_pct_per_h: float
    source: RateSource
    hours_left: float
    full_battery_hours: float


def spec_rate(spec_hours: float) -> float:
    return 100.0 / spec_hours


def observed_rate(readings: Sequence[Reading], *, min_span_h: float) -> float | None:
    """Discharge in % per hour (positive while draining), or None with too little data."""
    if len(readings) < 2:
        return None
    t0 = readings[0].at
    xs = [(r.at - t0).total_seconds() / 3600.0 for r in readings]
    if max(xs) - min(xs) < min_span_h:
        return None
    ys = [r.percent for r in readings]
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx <= 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    return -slope


def hours_left(*, percent: float, rate_pct_per_h: float) -> float:
    """Hours until empty at this rate: never negative, never more for a faster drain."""
    rate = max(rate_pct_per_h, MIN_RATE_PCT_PER_H)
    return max(0.0, min(100.0, percent)) / rate


def estimate(
    *,
    percent: float,
    outage_readings: Sequence[Reading],
    known_rate: float | None,
    spec_hours: float,
    min_span_h: float = 0.25,
) -> Estimate:
    """Hours left on battery and hours a full battery lasts, from what is known."""
    candidates = [
        (observed_rate(outage_readings, min_span_h=min_span_h), RateSource.OBSERVED),
        (known_rate, RateSource.LEARNED),
        (spec_rate(spec_hours), RateSource.SPEC),
    ]
    rate, source = next(
        (r, src) for r, src in candidates if r is not None and r >= MIN_RATE_PCT_PER_H
    )
    return Estimate(
        rate_pct_per_h=rate,
        source=source,
        hours_left=hours_left(percent=percent, rate_pct_per_h=rate),
        full_battery_hours=hours_left(percent=100.0, rate_pct_per_h=rate),
    )


def below_spec(est: Estimate, *, spec_hours: float, on_mains: bool, min_hours_left: float) -> bool:
    """`device.backup_below_spec`: a full battery would not last the spec, or (on battery)
    what is left is below `min_hours_left`."""
    if est.full_battery_hours < spec_hours * (1 - 1e-9):  # 100/(100/x) may round below x
        return True
    return not on_mains and est.hours_left < min_hours_left
