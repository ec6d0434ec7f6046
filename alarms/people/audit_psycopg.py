"""The audit log: who did or read what, when. Append-only (the services' role may only insert)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb

from larmkedja.db import AsyncConn
from larmkedja.transitions import Lifecycle, update_sql

INSERT = """
INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
VALUES (%s, %s, %s, %s, %s, %s)
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who makes a change (a person's token name and role), as the audit log records it."""

    name: str
    role: str


async def record(
    conn: AsyncConn,
    *,
    by: Actor,
    action: str,
    subject: tuple[str, str],
    details: dict[str, Any] | None = None,
) -> None:
    """Who (`by`) did or read what (`action` on `subject`: its type and id)."""
    await conn.execute(INSERT, (by.name, by.role, action, *subject, Jsonb(details or {})))


def audited_change(
    *, update: str, alias: str, subject_type: str, columns: str, case_of: str | None = None
) -> str:
    """One statement that makes a change and writes its audit row: `update` is an
    `UPDATE … RETURNING *` (of rows with a `{subject_type}_id`), `columns` what to return of the
    changed rows, written against `alias`. Its parameters add `%(actor)s`, `%(role)s`,
    `%(action)s` and `%(details)s`. No change, no audit row; two at once, one of each.
    `case_of` (the changed row's alarm id) also writes the step `%(case_action)s` into that
    alarm's case, when both are not null."""
    case = ""
    if case_of is not None:
        case = f"""
), cased AS (
    INSERT INTO case_entries (alarm_id, by_name, by_role, action, detail)
    SELECT {case_of}, %(actor)s, %(role)s, %(case_action)s, %(case_detail)s
    FROM {alias} WHERE {case_of} IS NOT NULL AND %(case_action)s::text IS NOT NULL"""  # noqa: S608
    return f"""
WITH {alias} AS (
{update.strip()}
), audited AS (
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    SELECT %(actor)s, %(role)s, %(action)s, '{subject_type}', {subject_type}_id::text,
           %(details)s
    FROM {alias}{case}
)
SELECT {columns} FROM {alias}
"""  # noqa: S608 - every part is a constant of the callers


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditedMoves:
    """The audited transitions of one entity (alarms, escalations) by its pure `lifecycle`: one
    statement (`audited_change` over `larmkedja.transitions.update_sql`) on the rows of `table`
    keyed by `{subject_type}_id`, returning `columns` of them (written against `alias`);
    `not_found(key)` for no such row. `case_of` and `case_actions`: the alarm whose case gets a
    step, and the step each action writes there."""

    lifecycle: Lifecycle[Any, Any]
    subject_type: str
    table: str
    alias: str
    columns: str
    not_found: Callable[[str], Exception]
    case_of: str | None = None
    case_actions: Mapping[Any, str] | None = None
    statement: str = field(init=False)

    def __post_init__(self) -> None:
        update = update_sql(
            table=self.table, key=f"{self.subject_type}_id", stamps=self.lifecycle.stamps
        )
        statement = audited_change(
            update=update,
            alias=self.alias,
            subject_type=self.subject_type,
            columns=self.columns,
            case_of=self.case_of,
        )
        object.__setattr__(self, "statement", statement)  # frozen: set once, here

    async def apply(
        self,
        conn: AsyncConn,
        key: object,
        action: enum.Enum,
        *,
        by: Actor,
        text: str | None,
        details: dict[str, Any],
        case_detail: dict[str, Any] | None = None,
    ) -> tuple[Any, ...]:
        """Move row `key` by `action`, writing its audit row (`details`) and its case step
        (`case_detail`, default the same) in the same statement. Returns the changed row, or
        raises with nothing changed. Run inside the caller's transaction."""
        target, allowed = self.lifecycle.target, self.lifecycle.allowed_from
        params = {
            "key": key,
            "target": target[action].value,
            "allowed": sorted(s.value for s in allowed[action]),
            "text": text,
            "actor": by.name,
            "role": by.role,
            "action": f"{self.subject_type}.{action.value}",
            "details": Jsonb(details),
            "case_action": (self.case_actions or {}).get(action),
            "case_detail": Jsonb(details if case_detail is None else case_detail),
        }
        row = await (await conn.execute(self.statement, params)).fetchone()
        if row is not None:
            return row
        state_of = f"SELECT state FROM {self.table} WHERE {self.subject_type}_id = %(key)s"  # noqa: S608 - constants
        current = await (await conn.execute(state_of, params)).fetchone()
        if current is None:
            raise self.not_found(str(key))
        state_type = type(target[action])
        raise self.lifecycle.refused(action=action, state=state_type(current[0]))
