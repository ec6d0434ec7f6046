"""The night patrol's escalation lifecycle, pure.

open → acknowledged → arrived → completed (with an outcome). The patrol may also arrive or
complete without acknowledging first (the first step it takes counts as the acknowledgement).
An escalation ends only by `complete` with an outcome or by a supervisor's `cancel` with a
reason; nothing else closes it.
"""

from __future__ import annotations

import enum

from larmkedja.transitions import Lifecycle, Stamp, TransitionRefused


class EscalationState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ARRIVED = "arrived"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class EscalationAction(enum.StrEnum):
    ACK = "ack"
    ARRIVE = "arrive"
    COMPLETE = "complete"
    CANCEL = "cancel"


_O, _A, _R = EscalationState.OPEN, EscalationState.ACKNOWLEDGED, EscalationState.ARRIVED
LIVE_STATES = frozenset({_O, _A, _R})

ALLOWED_FROM: dict[EscalationAction, frozenset[EscalationState]] = {
    EscalationAction.ACK: frozenset({_O}),
    EscalationAction.ARRIVE: frozenset({_O, _A}),
    EscalationAction.COMPLETE: LIVE_STATES,
    EscalationAction.CANCEL: LIVE_STATES,
}
TARGET: dict[EscalationAction, EscalationState] = {
    EscalationAction.ACK: EscalationState.ACKNOWLEDGED,
    EscalationAction.ARRIVE: EscalationState.ARRIVED,
    EscalationAction.COMPLETE: EscalationState.COMPLETED,
    EscalationAction.CANCEL: EscalationState.CANCELLED,
}
# What each step writes on the escalation (its SQL is generated from this).
STAMPS = (
    # The first step the patrol takes counts as its acknowledgement.
    Stamp(name="acknowledged", states=frozenset({_A.value, _R.value, "completed"}), once=True),
    Stamp(name="arrived", states=frozenset({_R.value})),
    Stamp(name="completed", states=frozenset({"completed"}), text="outcome"),
    Stamp(name="cancelled", states=frozenset({"cancelled"}), text="cancel_reason"),
)
NEEDS_TEXT = frozenset({EscalationAction.COMPLETE, EscalationAction.CANCEL})


class EscalationTransitionError(TransitionRefused):
    """Not allowed from the escalation's state (HTTP 409)."""

    record = "an escalation"


LIFECYCLE = Lifecycle(
    target=TARGET, allowed_from=ALLOWED_FROM, stamps=STAMPS, refused=EscalationTransitionError
)
