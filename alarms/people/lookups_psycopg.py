"""A device's person in the other subdomains' SQL: the expressions, written once.

The person of a device (or of a night-supervision plan) and whether the person is away are
the set-returning functions `larm_persons_of` and `larm_absences_at` (migration 0019), called
in FROM so that PostgreSQL inlines them into the query as index scans. The scalar forms
`larm_person_of` and `larm_absent` answer the same, but a query that calls them runs them as
functions on every row (~90 µs a row: most of a listed alarm's database time before 0019).
These build the expressions from the SQL of their arguments (column names or placeholders of a
constant query, never values): `tests/integration/test_person_lookups_plan.py` checks that the
queries using them plan every lookup inline.
"""

from __future__ import annotations


def person_of(device: str, plan: str = "NULL") -> str:
    """The person's ref of `device` (or of `plan`), NULL if none."""
    return f"(SELECT w.person_ref FROM larm_persons_of({device}, {plan}) w)"  # noqa: S608


def person_column(column: str, device: str, plan: str = "NULL") -> str:
    """One column of `persons` that the services may read, for the person of `device`; NULL
    if the device has no person."""
    return (
        f"(SELECT p.{column} FROM larm_persons_of({device}, {plan}) w"  # noqa: S608
        " JOIN persons p ON p.person_ref = w.person_ref)"
    )


def absent_at(device: str, at: str, plan: str = "NULL") -> str:
    """Whether the person of `device` (or of `plan`) is away at `at`; false with no person."""
    return (
        f"EXISTS (SELECT 1 FROM larm_persons_of({device}, {plan}) w,"  # noqa: S608
        f" larm_absences_at(w.person_ref, {at}))"
    )
