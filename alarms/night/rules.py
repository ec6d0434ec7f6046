"""Night digital supervision, pure: which checks a night has, and what a result does.

A night is named by the date of its evening and runs from 12:00 local time that day to 12:00
the next: a check at 22:00 belongs to the night of its own date, one at 01:30 to the night of
the day before. Check times are local wall-clock times (`HH:MM` or `HH:MM:SS`).

Daylight saving (documented in docs/night.md, tested for both changes): every planned check
happens exactly once.
- When the clocks go back, a time that occurs twice (02:30 on the last Sunday of October in
  Sweden) is the first occurrence (summer time, `fold=0`).
- When the clocks go forward, a time that does not exist (02:30 on the last Sunday of March)
  is read with the offset before the change: 02:30 CET = 01:30 UTC, which is 03:30 CEST, half an
  hour after the jump. It is not skipped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from larmkedja.events import CheckOutcome as Outcome

NIGHT_STARTS = time(12, 0)


class CheckState(enum.StrEnum):
    PENDING = "pending"
    DONE_OK = "done_ok"
    NOT_SEEN = "not_seen"
    RECHECKED_OK = "rechecked_ok"
    MISSED = "missed"
    ESCALATED = "escalated"


OPEN_CHECK_STATES = frozenset({CheckState.PENDING, CheckState.NOT_SEEN})


class Plan(BaseModel):
    """A person's night supervision plan: which local times, how long each check may take."""

    model_config = ConfigDict(frozen=True)

    plan_id: str
    device_id: str
    site: str
    checks: tuple[str, ...]
    window_minutes: float
    timezone: str = "Europe/Stockholm"
    paused_nights: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectedCheck:
    night: date
    local_time: str
    scheduled_for: datetime
    window_end: datetime


def parse_local_time(text: str) -> time:
    """`HH:MM` or `HH:MM:SS`; raises ValueError otherwise."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"not a local time (HH:MM or HH:MM:SS): {text!r}")
    hour, minute, second = (int(p) for p in [*parts, "00"][:3])
    return time(hour, minute, second)


def night_of(instant: datetime, tz: ZoneInfo) -> date:
    """The night an instant belongs to (named by its evening's date)."""
    local = instant.astimezone(tz)
    return local.date() if local.time() >= NIGHT_STARTS else local.date() - timedelta(days=1)


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The one instant a local wall-clock time means on `day` (see the module docstring)."""
    naive = datetime.combine(day, at)
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)


def expected_checks(plan: Plan, night: date) -> list[ExpectedCheck]:
    """The checks a plan expects in a night (none on a paused night), in time order."""
    if night in plan.paused_nights:
        return []
    tz = ZoneInfo(plan.timezone)
    window = timedelta(minutes=plan.window_minutes)
    found = []
    for text in plan.checks:
        at = parse_local_time(text)
        day = night if at >= NIGHT_STARTS else night + timedelta(days=1)
        scheduled = local_instant(day, at, tz)
        found.append(
            ExpectedCheck(
                night=night, local_time=text, scheduled_for=scheduled, window_end=scheduled + window
            )
        )
    return sorted(found, key=lambda c: c.scheduled_for)


def nights_around(now: datetime, tz: ZoneInfo) -> list[date]:
    """The nights whose checks should exist now: the current one and the next."""
    current = night_of(now, tz)
    return [current, current + timedelta(days=1)]


class Escalate(enum.StrEnum):
    """Why a check sends the night patrol."""

    NOT_SEEN_ON_RECHECK = "not seen on the re-check"
    NO_RECHECK = "not seen, and no re-check was done"
    NEEDS_HELP = "needs help (seen on camera)"
    CAMERA_OFFLINE = "camera offline: physical visit"
    MISSED = "check missed: no result by the end of its window"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    state: CheckState
    escalate: Escalate | None = None
    recheck: bool = False  # a re-check falls due after LARM_RECHECK_MINUTES
    alarm: bool = False  # an alarm goes into the operator queue as well


def on_result(state: CheckState, outcome: Outcome) -> Decision | None:
    """What a result does to a check in `state`; None: nothing (the check is already closed)."""
    if state is CheckState.PENDING:
        return {
            Outcome.SEEN_OK: Decision(state=CheckState.DONE_OK),
            Outcome.NOT_SEEN: Decision(state=CheckState.NOT_SEEN, recheck=True),
            Outcome.NEEDS_HELP: Decision(
                state=CheckState.ESCALATED, escalate=Escalate.NEEDS_HELP, alarm=True
            ),
            Outcome.CAMERA_OFFLINE: Decision(
                state=CheckState.ESCALATED, escalate=Escalate.CAMERA_OFFLINE
            ),
        }[outcome]
    if state is CheckState.NOT_SEEN:
        return {
            Outcome.SEEN_OK: Decision(state=CheckState.RECHECKED_OK),
            Outcome.NOT_SEEN: Decision(
                state=CheckState.ESCALATED, escalate=Escalate.NOT_SEEN_ON_RECHECK
            ),
            Outcome.NEEDS_HELP: Decision(
                state=CheckState.ESCALATED, escalate=Escalate.NEEDS_HELP, alarm=True
            ),
            Outcome.CAMERA_OFFLINE: Decision(
                state=CheckState.ESCALATED, escalate=Escalate.CAMERA_OFFLINE
            ),
        }[outcome]
    return None


def on_deadline(state: CheckState) -> Decision | None:
    """A check's deadline passed: its window (pending) or its re-check (not seen)."""
    if state is CheckState.PENDING:
        return Decision(state=CheckState.MISSED, escalate=Escalate.MISSED)
    if state is CheckState.NOT_SEEN:
        return Decision(state=CheckState.ESCALATED, escalate=Escalate.NO_RECHECK)
    return None
