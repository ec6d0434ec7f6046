"""What a state change writes on its record, declared once and used twice: the pure lifecycles
apply it to their dataclasses (`stamp`), the adapters' single atomic UPDATE is generated from
it (`update_sql`), so the two cannot say different things. Pure: no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar


@dataclass(frozen=True, slots=True, kw_only=True)
class Stamp:
    """Entering one of `states` writes `{name}_at` (the time), `{name}_by` (who; not if `by` is
    False) and the action's text into the column `text` (if named); `once`: only the first
    time, later changes keep it."""

    name: str
    states: frozenset[str]
    by: bool = True
    once: bool = False
    text: str | None = None


R = TypeVar("R")


def stamp(
    record: R, target: str, stamps: Sequence[Stamp], *, at: datetime, actor: str, text: str | None
) -> R:
    """`record` (a dataclass) as entering `target` leaves it, state aside."""
    changes: dict[str, Any] = {}
    for s in stamps:
        if target not in s.states or (s.once and getattr(record, f"{s.name}_at") is not None):
            continue
        changes[f"{s.name}_at"] = at
        if s.by:
            changes[f"{s.name}_by"] = actor
        if s.text:
            changes[s.text] = text
    return dataclasses.replace(record, **changes)  # type: ignore[type-var]


def _when(states: frozenset[str], column: str, value: str) -> str:
    listed = ", ".join(f"'{s}'" for s in sorted(states))
    return f"{column} = CASE WHEN %(target)s IN ({listed}) THEN {value} ELSE {column} END"


def update_sql(*, table: str, key: str, stamps: Sequence[Stamp]) -> str:
    """The one statement that moves a row of `table` (by `key` = %(key)s) to %(target)s if it
    is in one of %(allowed)s, with what `stamps` write (%(actor)s, %(text)s); RETURNING *."""
    sets = ["state = %(target)s"]
    for s in stamps:
        at = f"coalesce({s.name}_at, now())" if s.once else "now()"
        sets.append(_when(s.states, f"{s.name}_at", at))
        if s.by:
            by = f"coalesce({s.name}_by, %(actor)s)" if s.once else "%(actor)s"
            sets.append(_when(s.states, f"{s.name}_by", by))
        if s.text:
            sets.append(_when(s.states, s.text, "%(text)s"))
    sets.append("version = version + 1")
    body = ",\n    ".join(sets)
    return (
        f"UPDATE {table} SET\n    {body}\n"
        f"WHERE {key} = %(key)s AND state = ANY(%(allowed)s)\nRETURNING *"
    )
