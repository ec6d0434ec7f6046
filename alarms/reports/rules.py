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


class AnswerFigures(AnswerDistribution):
    """Safety alarms from devices (no tests): first event received → answered."""


class ArrivalFigures(_Frozen):
    """The night patrol: escalation created → arrived at the door."""

    count: int
    p50_s: float | None
    p90_s: float | None
    max_s: float | None
    within_promise_ratio: float | None = Field(
        description="arrived within the promise of the person's area (town or rural)"
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
        else:
            rows.append((prefix, name, value))
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
    for h in report.by_hour:
        for name in ("alarms", "answered", "mean_answer_s"):
            value = getattr(h, name)
            w.writerow(
                ["by_hour", f"{h.hour:02d}.{name}", "" if value is None else value] + [""] * 4
            )
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
