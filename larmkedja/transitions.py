"""An entity's state changes, declared once and used twice: which action moves from which
states to which (`Lifecycle`) and what each change writes on its record (`Stamp`). The pure
lifecycles move and stamp their dataclasses by it (`Lifecycle.move`, `stamp`), the adapters'
single atomic UPDATE is generated from it (`update_sql`), so the two cannot say different
things. Pure: no I/O."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar


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
A = TypeVar("A", bound=enum.Enum)
S = TypeVar("S", bound=enum.Enum)


class TransitionRefused(ValueError):
    """A move the record's state does not allow (HTTP 409); each entity's error names it."""

    record: ClassVar[str] = "a record"  # as the message names it

    def __init__(self, *, action: enum.Enum, state: enum.Enum) -> None:
        super().__init__(f"cannot {action.value} {self.record} that is {state.value}")
        self.action = action
        self.state = state


@dataclass(frozen=True, slots=True, kw_only=True)
class Lifecycle(Generic[A, S]):
    """The transitions of one entity: the state each action moves to (`target`) and may start
    from (`allowed_from`), what entering a state writes (`stamps`), and the error of a move its
    state does not allow (`refused`)."""

    target: Mapping[A, S]
    allowed_from: Mapping[A, frozenset[S]]
    stamps: Sequence[Stamp]
    refused: type[TransitionRefused]

    def move(self, state: S, action: A) -> S:
        """The state `action` moves `state` to; raises `refused` where it may not."""
        if state not in self.allowed_from[action]:
            raise self.refused(action=action, state=state)
        return self.target[action]


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
