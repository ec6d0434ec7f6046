"""The case of an alarm: every step from the press to the closing outcome, with who and when.

`rules` is pure (the steps, the outcome codes, who may take an alarm over); `cases_psycopg`
stores notes, call attempts and take-overs and reads a whole case. The steps of the alarm's
own transitions (answered, escalated, resolved) and of its patrol (ack, arrive, complete) are
written by those transitions' own statements (`alarms.people.audit_psycopg.AuditedMoves`).
"""

from alarms.cases.rules import (
    CaseAction,
    CaseError,
    CaseStep,
    UnknownOutcome,
    check_outcome,
)

__all__ = [
    "CaseAction",
    "CaseError",
    "CaseStep",
    "UnknownOutcome",
    "check_outcome",
]
