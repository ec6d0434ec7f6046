"""Every query that finds a device's person reads it inside the query's plan.

Migration 0019: the person lookups are set-returning SQL functions that PostgreSQL inlines when
they are called in FROM (`alarms/people/lookups_psycopg.py` writes the expressions); called as
scalar functions they ran once per row as functions and were most of a listed alarm's database
time. A change that stops the inlining (a function made STRICT, SECURITY DEFINER or PL/pgSQL, a
lookup called in the select list again) leaves the answers as they are, so only the plan shows
it: with VERBOSE, a function that is not inlined appears by name in the plan or as a Function
Scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from alarms.devices import sweeps_psycopg as device_sweeps
from alarms.devices import tests_due_psycopg as tests_due
from alarms.night import checks_psycopg as checks
from alarms.patrol import escalations_psycopg as esc
from alarms.queue import queries_psycopg as q
from alarms.reports import service_level_psycopg as report

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 7, 22, tzinfo=UTC)
CHECK = {
    "plan_id": "plan-1",
    "night": date(2026, 12, 7),
    "local_time": "23:00",
    "site": "solna",
    "device_id": "cam-1",
    "scheduled_for": NOW,
    "window_end": NOW + timedelta(minutes=10),
}
LISTS: dict[str, tuple[str, Sequence[Any] | Mapping[str, Any] | None]] = {
    "the queue": (q.LIST_ALARMS, {"states": q.states_for("open"), "site": None, "limit": 500}),
    "one alarm": (q.GET_ALARM, ("00000000-0000-0000-0000-000000000000",)),
    "the patrol's tasks": (esc.LIST, {"states": ["open"], "site": None, "limit": 500}),
    "the offline sweep": (device_sweeps.FIRE_OFFLINE, {"default_s": 60.0, "unanswered_s": 60.0}),
    "tests due": (tests_due.RAISE_DUE, {"days": 30, "interval_s": 2592000.0, "batch": 100}),
    "the tests-due list": (tests_due.DUE, {"site": None, "limit": 100}),
    "a night check": (checks.INSERT_CHECK, CHECK),
    "checks of absent persons": (checks.DROP_ABSENT_CHECKS, None),
    "the report's arrivals": (
        report.ARRIVED,
        {"rural_s": 1800.0, "town_s": 1200.0, "since": NOW, "until": NOW, "site": None},
    ),
}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_the_person_lookups_are_planned_inside_the_query(database_url: str, name: str) -> None:
    sql, params = LISTS[name]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("EXPLAIN (VERBOSE) " + sql, params).fetchall()
    plan = "\n".join(str(row[0]) for row in rows)
    assert "Function Scan" not in plan, plan
    for function in ("larm_person_of", "larm_persons_of", "larm_absent", "larm_absences_at"):
        assert function not in plan, plan
