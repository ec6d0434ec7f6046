"""The audit log: who did or read what, when. Append-only (the services' role may only insert)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from larmkedja.db import AsyncConn

INSERT = """
INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
VALUES (%s, %s, %s, %s, %s, %s)
"""


async def record(
    conn: AsyncConn,
    *,
    actor: str,
    role: str,
    action: str,
    subject_type: str,
    subject_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        INSERT, (actor, role, action, subject_type, subject_id, Jsonb(details or {}))
    )


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
