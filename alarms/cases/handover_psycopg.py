"""The hand-over at a shift change: everything still open and who has it, so that nothing is
left between chairs (open alarms, escalations not completed, device faults older than a day,
persons marked "follow up"). Async psycopg, for the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from alarms.patrol.escalations_psycopg import EscalationRow, list_escalations
from alarms.people.audit_psycopg import Actor
from alarms.people.follow_ups_psycopg import ListedFollowUp, listed
from alarms.queue.queries_psycopg import AlarmRow, list_alarms
from larmkedja.db import AsyncConn, from_row

DEVICE_FAULTS = """
SELECT f.device_id, f.site, f.fault, f.since,
       (SELECT coalesce(a.handled_by, a.answered_by) FROM alarms a
        WHERE a.device_id = f.device_id AND a.state <> 'resolved'
        ORDER BY a.raised_at LIMIT 1) AS handled_by
FROM (
    SELECT device_id, site, 'offline' AS fault, online_changed_at AS since
    FROM devices WHERE NOT online
    UNION ALL
    SELECT device_id, site, 'on_battery', mains_lost_at FROM devices WHERE NOT on_mains
) f
WHERE f.since < now() - make_interval(secs => %(older_s)s)
  AND (%(site)s::text IS NULL OR f.site = %(site)s)
ORDER BY f.since, f.device_id
LIMIT %(limit)s
"""


class DeviceFault(BaseModel):
    model_config = ConfigDict(frozen=True)

    device_id: str
    site: str
    fault: str = Field(description="offline or on_battery")
    since: datetime
    handled_by: str | None = Field(description="who has the device's open alarm, if anyone")


class Handover(BaseModel):
    """`GET /api/v1/handover`: what the next shift takes over."""

    model_config = ConfigDict(frozen=True)

    alarms: list[AlarmRow] = Field(description="every open alarm, with who has it")
    escalations: list[EscalationRow] = Field(description="every escalation not completed")
    device_faults: list[DeviceFault] = Field(description="device faults older than a day")
    follow_ups: list[ListedFollowUp] = Field(
        description='every person marked "follow up", with who marked them (each read audited)'
    )


async def handover(
    conn: AsyncConn,
    *,
    site: str | None,
    by: Actor,
    fault_older_s: float = 86_400.0,
    limit: int = 1000,
) -> Handover:
    alarms = await list_alarms(conn, state="open", site=site, limit=limit)
    escalations = await list_escalations(conn, state="open", site=site, limit=limit)
    params: dict[str, Any] = {"older_s": fault_older_s, "site": site, "limit": limit}
    rows = await (await conn.execute(DEVICE_FAULTS, params)).fetchall()
    faults = [from_row(DeviceFault, r) for r in rows]
    marked = await listed(conn, site=site, by=by)
    return Handover(alarms=alarms, escalations=escalations, device_faults=faults, follow_ups=marked)
