"""The device registry for the API (async psycopg)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from larmkedja.db import AsyncConn, from_row


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceRow:
    device_id: str
    site: str
    online: bool
    last_seen: datetime
    first_seen: datetime
    heartbeat_interval_s: float | None
    offline_due_at: datetime
    offline_since: datetime | None
    on_mains: bool
    mains_lost_at: datetime | None
    link_ok: bool
    battery_percent: float | None
    battery_reported_at: datetime | None
    backup_hours_estimate: float | None
    full_battery_hours: float | None
    discharge_pct_per_h: float | None
    rate_source: str | None
    backup_below_spec: bool


COLUMNS = """
device_id, site, online, last_seen, first_seen, heartbeat_interval_s, offline_due_at,
CASE WHEN online THEN NULL ELSE online_changed_at END AS offline_since,
on_mains, mains_lost_at, link_ok, battery_percent, battery_reported_at, backup_hours_estimate,
full_battery_hours, discharge_pct_per_h, rate_source, backup_below_spec
"""
GET = f"SELECT {COLUMNS} FROM devices WHERE device_id = %s"  # noqa: S608 - constant columns
LIST = f"""
SELECT {COLUMNS} FROM devices
WHERE (%(site)s::text IS NULL OR site = %(site)s)
  AND (%(state)s::text IS NULL
       OR (%(state)s = 'offline' AND NOT online)
       OR (%(state)s = 'online' AND online)
       OR (%(state)s = 'on_battery' AND NOT on_mains)
       OR (%(state)s = 'below_spec' AND backup_below_spec)
       OR (%(state)s = 'link_lost' AND NOT link_ok))
ORDER BY site, device_id
LIMIT %(limit)s OFFSET %(offset)s
"""  # noqa: S608 - constant columns


def _row(values: tuple[Any, ...]) -> DeviceRow:
    return from_row(DeviceRow, values)


async def get_device(conn: AsyncConn, device_id: str) -> DeviceRow | None:
    cur = await conn.execute(GET, (device_id,))
    row = await cur.fetchone()
    return _row(row) if row else None


async def list_devices(
    conn: AsyncConn,
    *,
    site: str | None,
    state: str | None,
    limit: int,
    offset: int,
) -> list[DeviceRow]:
    cur = await conn.execute(
        LIST,
        {
            "site": site,
            "state": state,
            "limit": limit,
            "offset": offset,
        },
    )
    return [_row(r) for r in await cur.fetchall()]
