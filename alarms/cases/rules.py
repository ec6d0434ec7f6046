"""The case of an alarm, pure: its steps in time order, the closing outcome codes. No I/O."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CaseAction(enum.StrEnum):
    """The steps of a case (contract §6)."""

    RAISED = "raised"
    ANSWERED = "answered"
    CALL = "call"
    NOTE = "note"
    ESCALATED = "escalated"
    PATROL_ACK = "patrol_ack"
    PATROL_ARRIVE = "patrol_arrive"
    PATROL_COMPLETE = "patrol_complete"
    TAKEN_OVER = "taken_over"
    RESOLVED = "resolved"


OUTCOME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class CaseError(Exception):
    """A case step that cannot be taken (the API answers 409 or 422)."""


class UnknownOutcome(CaseError):
    def __init__(self, code: str, codes: Sequence[str]) -> None:
        super().__init__(f"unknown outcome {code!r}; one of: {', '.join(codes)}")


class CaseStep(BaseModel):
    """One step of a case, as `GET /api/v1/alarms/{alarm_id}` shows it."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    by: str = Field(description="who took the step (a token's name; `system` for the press)")
    action: CaseAction
    detail: dict[str, Any] = Field(default_factory=dict)


def check_outcome(code: str, codes: Sequence[str]) -> str:
    """The code if the municipality's list has it; raises UnknownOutcome otherwise."""
    if code not in codes:
        raise UnknownOutcome(code, codes)
    return code


def case_of(*, raised: CaseStep, entries: Iterable[CaseStep]) -> list[CaseStep]:
    """Every step in time order, the press first (entries written later come after it even if
    a clock says otherwise: the press is what opened the case)."""
    rest = sorted(entries, key=lambda s: s.at)
    return [raised, *rest]
