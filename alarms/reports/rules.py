"""The service-level report, pure: its shape (contract §6), the breaches, and CSV. No I/O."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from alarms.queue.answer_time import AnswerDistribution


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class AlarmCounts(_Frozen):
    count: int
    by_kind: dict[str, int]
    by_priority: dict[str, int] = Field(description="alarms by priority (1 most urgent)")


# The bins of the distributions (upper bounds, seconds): answer times around the TSA code's
# 60 s and 180 s, arrivals in minutes up to two hours; each also gets the configured bound or
# promise, so a bar never straddles the line it is read against.
ANSWER_EDGES_S = (10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
ARRIVAL_EDGES_S = tuple(m * 60.0 for m in (10, 20, 30, 40, 50, 60, 75, 90, 120))
AREA_TYPES = ("town", "rural")


def edges(base: tuple[float, ...], *extra: float) -> list[float]:
    """The upper bounds of the bins, ascending: `base` and the lines the chart draws."""
    return sorted({*base, *extra})


class Bin(_Frozen):
    """How many fell in (from_s, to_s]: the first bin starts at 0 (inclusive), the last has
    no upper bound (`to_s` null)."""

    from_s: float
    to_s: float | None
    count: int


class AreaBin(Bin):
    area_type: str = Field(description="town or rural")


class AnswerFigures(AnswerDistribution):
    """Safety alarms from devices (no tests): first event received → answered."""

    histogram: list[Bin] = Field(
        default_factory=list, description="the answer times' distribution (bins include 60, 180)"
    )


class AreaArrivals(_Frozen):
    """The arrivals at the homes of one area type, against its promise."""

    area_type: str = Field(description="town or rural")
    promise_s: float
    count: int
    p50_s: float | None
    p90_s: float | None
    max_s: float | None
    within_promise_ratio: float | None


class ArrivalFigures(_Frozen):
    """The night patrol: escalation created → arrived at the door."""

    count: int
    p50_s: float | None
    p90_s: float | None
    max_s: float | None
    within_promise_ratio: float | None = Field(
        description="arrived within the promise of the person's area (town or rural)"
    )
    by_area: list[AreaArrivals] = Field(default_factory=list, description="town, then rural")
    histogram: list[AreaBin] = Field(
        default_factory=list,
        description="the arrival times' distribution per area type (bins include the promises)",
    )


class NightFigures(_Frozen):
    planned: int
    done_in_time: int
    rechecked: int
    missed: int
    escalated: int


class Availability(_Frozen):
    online_ratio: float | None = Field(description="share of device-hours online")
    offline_episodes: int


class HourFigures(_Frozen):
    hour: int = Field(description="local hour of day (0 to 23) the alarm was raised")
    alarms: int
    answered: int
    mean_answer_s: float | None
    within_60s: int = Field(default=0, description="answered within 60 s")
    within_180s: int = Field(default=0, description="answered within 180 s")


class Breach(_Frozen):
    alarm_id: uuid.UUID | None = None
    check_id: int | None = None
    what: str = Field(description="answer_time, unanswered, arrival or check_missed")
    value_s: float | None
    at: datetime
    link: str = Field(description="where to investigate it (the alarm's case, or the checks)")


class ServiceLevel(_Frozen):
    site: str | None
    since: datetime
    until: datetime
    alarms: AlarmCounts
    answer: AnswerFigures
    arrival: ArrivalFigures
    night: NightFigures
    availability: Availability
    by_hour: list[HourFigures]
    breaches: list[Breach]


def link_for(*, alarm_id: uuid.UUID | None, check_id: int | None) -> str:
    if alarm_id is not None:
        return f"/api/v1/alarms/{alarm_id}"
    return f"/api/v1/supervision/checks#{check_id}"


def _flat(prefix: str, values: dict[str, Any]) -> list[tuple[str, str, Any]]:
    rows: list[tuple[str, str, Any]] = []
    for name, value in values.items():
        if isinstance(value, dict):
            rows += [(prefix, f"{name}.{k}", v) for k, v in sorted(value.items())]
        elif not isinstance(value, list):  # the lists have rows of their own
            rows.append((prefix, name, value))
    return rows


def bin_name(b: Bin) -> str:
    """`60-90`: (60 s, 90 s]; `600-`: above 600 s."""
    return f"{b.from_s:g}-{'' if b.to_s is None else f'{b.to_s:g}'}"


def _lists(report: ServiceLevel) -> list[tuple[str, str, Any]]:
    rows = [("answer_histogram", bin_name(b), b.count) for b in report.answer.histogram]
    for area in report.arrival.by_area:
        values = area.model_dump(exclude={"area_type"})
        rows += [("arrival_by_area", f"{area.area_type}.{k}", v) for k, v in values.items()]
    rows += [
        ("arrival_histogram", f"{b.area_type}.{bin_name(b)}", b.count)
        for b in report.arrival.histogram
    ]
    for h in report.by_hour:
        values = h.model_dump(exclude={"hour"})
        rows += [("by_hour", f"{h.hour:02d}.{k}", v) for k, v in values.items()]
    return rows


def to_csv(report: ServiceLevel) -> str:
    """The report as CSV: one row per figure (`section,name,value`), then one per breach."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["section", "name", "value", "alarm_id", "check_id", "at", "link"])
    w.writerow(["period", "site", report.site or "", "", "", "", ""])
    w.writerow(["period", "since", report.since.isoformat(), "", "", "", ""])
    w.writerow(["period", "until", report.until.isoformat(), "", "", "", ""])
    for section in ("alarms", "answer", "arrival", "night", "availability"):
        figures = getattr(report, section).model_dump()
        for sec, name, value in _flat(section, figures):
            w.writerow([sec, name, "" if value is None else value, "", "", "", ""])
    for sec, name, value in _lists(report):
        w.writerow([sec, name, "" if value is None else value, "", "", "", ""])
    for b in report.breaches:
        w.writerow(
            [
                "breach",
                b.what,
                "" if b.value_s is None else b.value_s,
                b.alarm_id or "",
                b.check_id or "",
                b.at.isoformat(),
                b.link,
            ]
        )
    return out.getvalue()
