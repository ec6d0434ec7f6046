"""Token administration for the CLI (`larmkedja token …`). Secrets are shown once, stored hashed."""

from __future__ import annotations

import psycopg

from api.auth import SQL_INSERT, SQL_INSERT_NO_EXPIRY, Role, hash_token, new_token
from larmkedja import db
from larmkedja.settings import Settings

AUDIT = """
INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
VALUES ('cli', 'admin', %s, 'token', %s, %s::jsonb)
"""


def create(settings: Settings, *, role: str, name: str, days: float | None = None) -> str:
    """Create a token and return it; only its hash is stored."""
    Role(role)  # refuse unknown roles before touching the database
    if not name.strip():
        raise ValueError("a token needs a name")
    db.prepare(settings)
    token = new_token()
    with psycopg.connect(settings.database_url) as conn:
        if days is None:
            row = conn.execute(SQL_INSERT_NO_EXPIRY, (name, role, hash_token(token))).fetchone()
        else:
            row = conn.execute(SQL_INSERT, (name, role, hash_token(token), days)).fetchone()
        token_id = row[0] if row else None
        conn.execute(AUDIT, ("token.create", str(token_id), f'{{"role": "{role}"}}'))
    return token


def revoke(settings: Settings, *, name: str) -> int:
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL"
            " RETURNING token_id",
            (name,),
        ).fetchall()
        for (token_id,) in rows:
            conn.execute(AUDIT, ("token.revoke", str(token_id), "{}"))
    return len(rows)


def listing(settings: Settings) -> list[str]:
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(
            "SELECT token_id, name, role, created_at, expires_at, revoked_at FROM api_tokens"
            " ORDER BY created_at"
        ).fetchall()
    return [
        f"{r[0]}  {r[2]:<10} {r[1]}  created {r[3]:%Y-%m-%d}"
        + (f"  expires {r[4]:%Y-%m-%d}" if r[4] else "")
        + ("  REVOKED" if r[5] else "")
        for r in rows
    ]
