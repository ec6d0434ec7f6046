"""The alarm lifecycle, pure: states, who may move an alarm where, priorities, folding.

raised → answered → (escalated) → resolved with an outcome. Nothing leaves the queue without a
human decision: only `resolve` (by a person) ends a safety alarm; the system itself may end only
a technical alarm whose cause has gone (`auto_resolve`). The SQL adapter enforces the same
table atomically (`UPDATE … WHERE state = ANY(allowed_from)`), this module is its source.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from larmkedja.events import AlarmKind
from larmkedja.transitions import Lifecycle, Stamp, TransitionRefused, stamp


class AlarmState(enum.StrEnum):
    RAISED = "raised"
    ANSWERED = "answered"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class Action(enum.StrEnum):
    ANSWER = "answer"
    ESCALATE = "escalate"
    RESOLVE = "resolve"


OPEN_STATES = frozenset({AlarmState.RAISED, AlarmState.ANSWERED, AlarmState.ESCALATED})

ALLOWED_FROM: dict[Action, frozenset[AlarmState]] = {
    Action.ANSWER: frozenset({AlarmState.RAISED}),
    # Escalating an alarm nobody answered yet counts as taking it: the operator decided.
    Action.ESCALATE: frozenset({AlarmState.RAISED, AlarmState.ANSWERED}),
    Action.RESOLVE: frozenset({AlarmState.ANSWERED, AlarmState.ESCALATED}),
}
TARGET: dict[Action, AlarmState] = {
    Action.ANSWER: AlarmState.ANSWERED,
    Action.ESCALATE: AlarmState.ESCALATED,
    Action.RESOLVE: AlarmState.RESOLVED,
}


# What each decision writes on the alarm (the SQL of `queries_psycopg` is generated from it).
_ALL_TARGETS = frozenset(s.value for s in TARGET.values())
STAMPS = (
    # Escalating or resolving an alarm nobody answered yet counts as answering it.
    Stamp(name="answered", states=_ALL_TARGETS, once=True),
    Stamp(name="escalated", states=frozenset({AlarmState.ESCALATED.value}), by=False),
    Stamp(name="resolved", states=frozenset({AlarmState.RESOLVED.value}), text="outcome"),
)


class TransitionError(TransitionRefused):
    """The action is not allowed from the alarm's state (HTTP 409)."""

    record = "an alarm"


LIFECYCLE = Lifecycle(
    target=TARGET, allowed_from=ALLOWED_FROM, stamps=STAMPS, refused=TransitionError
)


# Priority 1 is the most urgent. 1: a person may need help now; 2: a possible risk that needs a
# call; 3: supervision findings; 4: technical (the alarm itself may not work); 5: restores.
PRIORITY_BY_KIND: dict[AlarmKind, int] = {
    AlarmKind.BUTTON: 1,
    AlarmKind.FALL: 1,
    AlarmKind.SMOKE: 1,
    AlarmKind.SUPERVISION_NEEDS_HELP: 1,
    AlarmKind.NO_ACTIVITY: 2,
    AlarmKind.BED_EXIT: 2,
    AlarmKind.DOOR: 2,
    AlarmKind.OTHER: 2,
    AlarmKind.SUPERVISION_CAMERA_OFFLINE: 3,
    AlarmKind.DEVICE_OFFLINE: 4,
    AlarmKind.TAMPER: 4,
    AlarmKind.LINK_LOST: 4,
    AlarmKind.SITE_POWER_CUT: 4,
    AlarmKind.DEVICE_TEST_FAILED: 4,
}
TECHNICAL_KINDS = frozenset(k for k, p in PRIORITY_BY_KIND.items() if p >= 4)


def priority_for(kind: str) -> int:
    try:
        return PRIORITY_BY_KIND[AlarmKind(kind)]
    except ValueError:
        return 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Alarm:
    """What the lifecycle needs of an alarm (the adapter's row has more)."""

    kind: str
    state: AlarmState
    raised_at: datetime
    event_count: int = 1
    last_event_at: datetime | None = None
    reset_at_device: datetime | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    escalated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    outcome: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


def raise_alarm(*, kind: str, received_at: datetime) -> Alarm:
    return Alarm(
        kind=kind, state=AlarmState.RAISED, raised_at=received_at, last_event_at=received_at
    )


def fold_press(alarm: Alarm, *, received_at: datetime) -> Alarm:
    """Another press of the same device and kind while the alarm is open."""
    if not alarm.is_open:
        raise ValueError("a press folds only into an open alarm; a closed one means a new alarm")
    last = max(alarm.last_event_at or alarm.raised_at, received_at)
    return replace(alarm, event_count=alarm.event_count + 1, last_event_at=last)


def mark_reset(alarm: Alarm, *, received_at: datetime) -> Alarm:
    """`alarm.cancel` at the device: flagged, still in the queue until an operator resolves it."""
    if not alarm.is_open or alarm.reset_at_device is not None:
        return alarm
    return replace(alarm, reset_at_device=received_at)


def apply(
    alarm: Alarm, action: Action, *, at: datetime, actor: str, outcome: str | None = None
) -> Alarm:
    """One human decision; raises TransitionError where the table does not allow it."""
    target = LIFECYCLE.move(alarm.state, action)
    if action is Action.RESOLVE and not outcome:
        raise ValueError("resolving needs an outcome")
    changed = stamp(alarm, target.value, STAMPS, at=at, actor=actor, text=outcome)
    return replace(changed, state=target)


def auto_resolve(alarm: Alarm, *, at: datetime, outcome: str) -> Alarm:
    """The system ends a technical alarm whose cause has gone (e.g. the device is back)."""
    if alarm.kind not in TECHNICAL_KINDS:
        raise ValueError("only technical alarms end without a human decision")
    if not alarm.is_open:
        return alarm
    return replace(
        alarm, state=AlarmState.RESOLVED, resolved_at=at, resolved_by="system", outcome=outcome
    )


def answer_time_s(alarm: Alarm) -> float | None:
    """From the first event received to the answer (contract §3)."""
    if alarm.answered_at is None:
        return None
    return (alarm.answered_at - alarm.raised_at).total_seconds()


def waiting_s(*, raised_at: datetime, answered_at: datetime | None, now: datetime) -> float:
    """How long the alarm waited: until now if nobody answered, else its answer time."""
    end = answered_at if answered_at is not None else now
    return max(0.0, (end - raised_at).total_seconds())
