"""The queue's and the patrol's lists read a device's person inside the query's plan.

Migration 0019: the person lookups are set-returning SQL functions that PostgreSQL inlines when
they are called in FROM; called as scalar functions they ran once per row as functions and were
most of a listed alarm's database time. A change that stops the inlining (a function made
STRICT, SECURITY DEFINER or PL/pgSQL, a lookup called in the select list again) leaves the
answers as they are, so only the plan shows it: with VERBOSE, a function that is not inlined
appears by name in the plan's output or as a Function Scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
import pytest

from alarms.patrol import escalations_psycopg as esc
from alarms.queue import queries_psycopg as q

pytestmark = pytest.mark.integration

LISTS: dict[str, tuple[str, Sequence[Any] | Mapping[str, Any]]] = {
    "the queue": (q.LIST_ALARMS, {"states": q.states_for("open"), "site": None, "limit": 500}),
    "one alarm": (q.GET_ALARM, ("00000000-0000-0000-0000-000000000000",)),
    "the patrol's tasks": (esc.LIST, {"states": ["open"], "site": None, "limit": 500}),
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
