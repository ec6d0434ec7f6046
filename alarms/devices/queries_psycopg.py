"""The device registry for the API (async psycopg)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from larmkedja.db import AsyncConn, from_row


class DeviceRow(BaseModel):
    """A device as the registry knows it (the API's schema, contract §3)."""

    model_config = ConfigDict(frozen=True)

    device_id: str
    site: str
    online: bool
    last_seen: datetime = Field(description="when the system last received any of its events")
    first_seen: datetime
    heartbeat_interval_s: float | None = Field(description="its own period; null: the default")
    offline_due_at: datetime
    offline_since: datetime | None
    on_mains: bool
    mains_lost_at: datetime | None
    link_ok: bool
    battery_percent: float | None
    battery_reported_at: datetime | None
    backup_hours_estimate: float | None = Field(
        description="hours left on battery: now if on battery, else if mains went now"
    )
    full_battery_hours: float | None
    discharge_pct_per_h: float | None
    rate_source: str | None = Field(description="observed, learned or spec")
    backup_below_spec: bool
    backup_spec_hours: float = Field(description="what every device must hold (48 h)")


COLUMNS = """
device_id, site, online, last_seen, first_seen, heartbeat_interval_s, offline_due_at,
CASE WHEN online THEN NULL ELSE online_changed_at END AS offline_since,
on_mains, mains_lost_at, link_ok, battery_percent, battery_reported_at, backup_hours_estimate,
full_battery_hours, discharge_pct_per_h, rate_source, backup_below_spec,
%(spec_hours)s::float8
"""
GET = f"SELECT {COLUMNS} FROM devices WHERE device_id = %(device_id)s"  # noqa: S608 - constant columns
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


async def get_device(conn: AsyncConn, device_id: str, *, spec_hours: float) -> DeviceRow | None:
    cur = await conn.execute(GET, {"device_id": device_id, "spec_hours": spec_hours})
    row = await cur.fetchone()
    return _row(row) if row else None


async def list_devices(
    conn: AsyncConn,
    *,
    site: str | None,
    state: str | None,
    limit: int,
    offset: int,
    spec_hours: float,
) -> list[DeviceRow]:
    cur = await conn.execute(
        LIST,
        {
            "site": site,
            "state": state,
            "limit": limit,
            "offset": offset,
            "spec_hours": spec_hours,
        },
    )
    return [_row(r) for r in await cur.fetchall()]
