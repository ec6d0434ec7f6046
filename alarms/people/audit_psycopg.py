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
