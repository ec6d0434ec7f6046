"""The alarm lifecycle as a state machine (Hypothesis stateful testing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from alarms.queue.lifecycle import (
    ALLOWED_FROM,
    Action,
    Alarm,
    AlarmState,
    TransitionError,
    answer_time_s,
    apply,
    auto_resolve,
    fold_press,
    mark_reset,
    priority_for,
    raise_alarm,
    waiting_s,
)

T0 = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)


class AlarmMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.alarm: Alarm = raise_alarm(kind="alarm.button", received_at=T0)
        self.presses = 1
        self.history: list[AlarmState] = [self.alarm.state]

    @rule(seconds=st.floats(0, 120))
    def time_passes(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    @rule()
    def press_again(self) -> None:
        if self.alarm.is_open:
            self.alarm = fold_press(self.alarm, received_at=self.now)
            self.presses += 1
        else:
            with pytest.raises(ValueError):
                fold_press(self.alarm, received_at=self.now)

    @rule()
    def cancel_at_device(self) -> None:
        before = self.alarm
        self.alarm = mark_reset(self.alarm, received_at=self.now)
        assert self.alarm.state == before.state  # a reset never closes an alarm

    @rule(action=st.sampled_from(list(Action)), who=st.sampled_from(["op-1", "op-2"]))
    def decide(self, action: Action, who: str) -> None:
        before = self.alarm
        if before.state in ALLOWED_FROM[action]:
            self.alarm = apply(before, action, at=self.now, actor=who, outcome="ok")
            self.history.append(self.alarm.state)
            if before.answered_at is not None:
                assert self.alarm.answered_at == before.answered_at  # answered once
        else:
            with pytest.raises(TransitionError):
                apply(before, action, at=self.now, actor=who, outcome="ok")

    @precondition(lambda self: self.alarm.is_open)
    @rule()
    def system_may_not_close_a_safety_alarm(self) -> None:
        with pytest.raises(ValueError):
            auto_resolve(self.alarm, at=self.now, outcome="gone")

    @invariant()
    def presses_are_never_lost(self) -> None:
        assert self.alarm.event_count == self.presses

    @invariant()
    def resolved_only_by_a_person_after_an_answer(self) -> None:
        if self.alarm.state is AlarmState.RESOLVED:
            assert self.alarm.answered_at is not None and self.alarm.outcome
            assert self.alarm.resolved_by in ("op-1", "op-2")

    @invariant()
    def states_only_move_forward(self) -> None:
        order = list(AlarmState)
        assert self.history == sorted(self.history, key=order.index)

    @invariant()
    def answer_time_is_never_negative(self) -> None:
        t = answer_time_s(self.alarm)
        assert t is None or t >= 0


TestAlarmMachine = AlarmMachine.TestCase


def test_priorities_put_people_before_technology() -> None:
    assert priority_for("alarm.button") == priority_for("alarm.fall") == 1
    assert priority_for("alarm.door") == 2
    assert priority_for("device.offline") == 4
    assert priority_for("something.new") == 2  # unknown: treated as a possible risk


def test_technical_alarms_may_end_by_themselves() -> None:
    alarm = raise_alarm(kind="device.offline", received_at=T0)
    closed = auto_resolve(alarm, at=T0 + timedelta(minutes=5), outcome="back online")
    assert closed.state is AlarmState.RESOLVED and closed.resolved_by == "system"


def test_waiting_time() -> None:
    later = T0 + timedelta(seconds=45)
    assert waiting_s(raised_at=T0, answered_at=None, now=later) == 45
    assert waiting_s(raised_at=T0, answered_at=T0 + timedelta(seconds=20), now=later) == 20
