"""Night supervision rules: nights across midnight, daylight saving, and what results do."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alarms.night.rules import (
    OPEN_CHECK_STATES,
    CheckState,
    Escalate,
    Plan,
    expected_checks,
    night_of,
    on_deadline,
    on_result,
    parse_local_time,
)
from larmkedja.events import CheckOutcome as Outcome

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def plan(*checks: str, paused: frozenset[date] = frozenset()) -> Plan:
    return Plan(
        plan_id="p",
        device_id="cam",
        site="s",
        checks=checks,
        window_minutes=10,
        paused_nights=paused,
    )


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_night_runs_across_midnight_in_local_time() -> None:
    checks = expected_checks(plan("22:00", "01:30", "04:00"), date(2026, 11, 23))
    assert [c.scheduled_for for c in checks] == [
        utc(2026, 11, 23, 21, 0),
        utc(2026, 11, 24, 0, 30),
        utc(2026, 11, 24, 3, 0),
    ]
    assert all(c.night == date(2026, 11, 23) for c in checks)
    assert (checks[0].window_end - checks[0].scheduled_for).total_seconds() == 600


def test_check_times_are_listed_in_time_order_whatever_the_plan_says() -> None:
    checks = expected_checks(plan("04:00", "22:00", "01:30"), date(2026, 11, 23))
    assert [c.local_time for c in checks] == ["22:00", "01:30", "04:00"]


def test_night_of_splits_at_noon() -> None:
    assert night_of(utc(2026, 11, 24, 0, 30), STOCKHOLM) == date(2026, 11, 23)  # 01:30 local
    assert night_of(utc(2026, 11, 24, 10, 59), STOCKHOLM) == date(2026, 11, 23)  # 11:59
    assert night_of(utc(2026, 11, 24, 11, 0), STOCKHOLM) == date(2026, 11, 24)  # 12:00


def test_clocks_forward_a_missing_0230_happens_once_half_an_hour_after_the_jump() -> None:
    # 2026-03-29 02:00 CET → 03:00 CEST: 02:30 does not exist that night.
    checks = expected_checks(plan("01:30", "02:30", "04:00"), date(2026, 3, 28))
    assert [c.scheduled_for for c in checks] == [
        utc(2026, 3, 29, 0, 30),  # 01:30 CET
        utc(2026, 3, 29, 1, 30),  # "02:30" read as CET = 03:30 CEST, once
        utc(2026, 3, 29, 2, 0),  # 04:00 CEST
    ]
    assert checks[1].scheduled_for.astimezone(STOCKHOLM).strftime("%H:%M") == "03:30"


def test_clocks_back_a_doubled_0230_happens_once_the_first_time() -> None:
    # 2026-10-25 03:00 CEST → 02:00 CET: 02:30 happens twice; the check is the first one.
    checks = expected_checks(plan("01:30", "02:30", "04:00"), date(2026, 10, 24))
    assert [c.scheduled_for for c in checks] == [
        utc(2026, 10, 24, 23, 30),  # 01:30 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST (the first 02:30), once
        utc(2026, 10, 25, 3, 0),  # 04:00 CET
    ]
    assert len({c.scheduled_for for c in checks}) == 3


def test_a_paused_night_has_no_checks_and_the_next_one_does() -> None:
    paused = plan("22:00", paused=frozenset({date(2026, 12, 24)}))
    assert expected_checks(paused, date(2026, 12, 24)) == []
    assert len(expected_checks(paused, date(2026, 12, 25))) == 1


@pytest.mark.parametrize("text", ["2200", "22:0", "25:00", "22:00:60", "ab:cd", "22:00:00:00"])
def test_bad_local_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_local_time(text)


def test_the_rules() -> None:
    P, N = CheckState.PENDING, CheckState.NOT_SEEN
    assert on_result(P, Outcome.SEEN_OK).state is CheckState.DONE_OK  # type: ignore[union-attr]
    first = on_result(P, Outcome.NOT_SEEN)
    assert first is not None and first.state is N and first.recheck and first.escalate is None
    again = on_result(N, Outcome.NOT_SEEN)
    assert again is not None and again.escalate is Escalate.NOT_SEEN_ON_RECHECK
    help_ = on_result(P, Outcome.NEEDS_HELP)
    assert help_ is not None and help_.alarm and help_.escalate is Escalate.NEEDS_HELP
    camera = on_result(P, Outcome.CAMERA_OFFLINE)
    assert camera is not None and camera.escalate is Escalate.CAMERA_OFFLINE
    assert on_deadline(P).escalate is Escalate.MISSED  # type: ignore[union-attr]
    assert on_deadline(N).escalate is Escalate.NO_RECHECK  # type: ignore[union-attr]


steps = st.lists(st.sampled_from([*(o.value for o in Outcome), "deadline"]), max_size=6)


@given(steps=steps)
def test_every_check_escalates_at_most_once_and_closed_checks_stay_closed(
    steps: list[str],
) -> None:
    state, escalations, alarms = CheckState.PENDING, 0, 0
    for step in steps:
        decision = on_deadline(state) if step == "deadline" else on_result(state, Outcome(step))
        if state not in OPEN_CHECK_STATES:
            assert decision is None  # final states absorb everything
            continue
        assert decision is not None
        state = decision.state
        escalations += decision.escalate is not None
        alarms += decision.alarm
    assert escalations <= 1 and alarms <= 1
    if escalations:
        assert state in (CheckState.ESCALATED, CheckState.MISSED)
