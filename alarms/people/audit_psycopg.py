"""The audit log: who did or read what, when. Append-only (the services' role may only insert)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from larmkedja.db import AsyncConn

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


def audited_change(*, update: str, alias: str, subject_type: str, columns: str) -> str:
    """One statement that makes a change and writes its audit row: `update` is an
    `UPDATE … RETURNING *` (of rows with a `{subject_type}_id`), `columns` what to return of the
    changed rows, written against `alias`. Its parameters add `%(actor)s`, `%(role)s`,
    `%(action)s` and `%(details)s`. No change, no audit row; two at once, one of each."""
    return f"""
WITH {alias} AS (
{update.strip()}
), audited AS (
    INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
    SELECT %(actor)s, %(role)s, %(action)s, '{subject_type}', {subject_type}_id::text,
           %(details)s
    FROM {alias}
)
SELECT {columns} FROM {alias}
"""  # noqa: S608 - every part is a constant of the callers


async def transition(
    conn: AsyncConn,
    statement: str,
    *,
    key: object,
    target: str,
    allowed: Iterable[str],
    text: str | None,
    by: Actor,
    action: str,
    details: dict[str, Any],
    state_of: str,
    refused: Callable[[str | None], Exception],
) -> tuple[Any, ...]:
    """Run a statement made by `audited_change` over `larmkedja.transitions.update_sql`: the
    row `key` to `target` if its state is one of `allowed`. Returns the changed row, or raises
    `refused(state)` with nothing changed, the row's state read with `state_of` (by `%(key)s`;
    None: no such row). Run inside the caller's transaction."""
    params = {
        "key": key,
        "target": target,
        "allowed": sorted(allowed),
        "text": text,
        "actor": by.name,
        "role": by.role,
        "action": action,
        "details": Jsonb(details),
    }
    row = await (await conn.execute(statement, params)).fetchone()
    if row is None:
        current = await (await conn.execute(state_of, params)).fetchone()
        raise refused(current[0] if current else None)
    return row
