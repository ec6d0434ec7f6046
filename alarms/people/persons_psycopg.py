"""The person registry: the one place with names, addresses and phone numbers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from larmkedja.db import AsyncConn, from_row


class PersonRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    person_ref: str
    device_id: str | None
    plan_id: str | None
    name: str
    address: str
    phone: str | None
    access_notes: str | None
    updated_at: datetime
    updated_by: str


COLUMNS = (
    "person_ref, device_id, plan_id, name, address, phone, access_notes, updated_at, updated_by"
)
GET = f"SELECT {COLUMNS} FROM persons WHERE person_ref = %s"  # noqa: S608 - constant columns
UPSERT = f"""
INSERT INTO persons (person_ref, device_id, plan_id, name, address, phone, access_notes,
                     updated_by)
VALUES (%(person_ref)s, %(device_id)s, %(plan_id)s, %(name)s, %(address)s, %(phone)s,
        %(access_notes)s, %(updated_by)s)
ON CONFLICT (person_ref) DO UPDATE SET
    device_id = EXCLUDED.device_id, plan_id = EXCLUDED.plan_id, name = EXCLUDED.name,
    address = EXCLUDED.address, phone = EXCLUDED.phone, access_notes = EXCLUDED.access_notes,
    updated_by = EXCLUDED.updated_by, updated_at = now()
RETURNING {COLUMNS}
"""  # noqa: S608 - constant columns


async def get_person(conn: AsyncConn, person_ref: str) -> PersonRow | None:
    cur = await conn.execute(GET, (person_ref,))
    row = await cur.fetchone()
    return from_row(PersonRow, row) if row else None


async def put_person(conn: AsyncConn, values: dict[str, Any]) -> PersonRow:
    cur = await conn.execute(UPSERT, values)
    row = await cur.fetchone()
    if row is None:  # pragma: no cover - the upsert always returns its row
        raise LookupError("person not stored")
    return from_row(PersonRow, row)
