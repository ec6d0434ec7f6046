"""Flood mode: technical alarms of one cause in a burst become one incident in the queue.

A site's power cut or a broker coming back raises hundreds of `device.offline` alarms in
seconds; an operator must still see the one `alarm.button` among them at once. The engine's
sweep groups open, unanswered technical alarms (priority 4 and 5) of one site and kind: once
`LARM_FLOOD_THRESHOLD` of them were raised within `LARM_FLOOD_WINDOW_S`, they form an incident,
and later ones of the same site and kind join it while it is open. Safety alarms are never
grouped. The operator answers or resolves an incident's alarms in one action, each alarm moved
and audited on its own (`act`). Rows another transaction holds are skipped this tick.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Unpack

from pydantic import BaseModel, ConfigDict

from alarms.queue import queries_psycopg as q
from alarms.queue.lifecycle import Action, TransitionError
from larmkedja.db import AsyncConn, Conn, from_row
from larmkedja.settings import Settings

TECHNICAL_PRIORITY = 4  # and below in urgency: tamper, link.lost, device.offline

JOIN_OPEN = """
WITH free AS (
    SELECT a.alarm_id, i.incident_id FROM alarms a
    JOIN incidents i ON i.site = a.site AND i.kind = a.kind AND i.closed_at IS NULL
    WHERE a.incident_id IS NULL AND a.state = 'raised' AND a.priority >= %(priority)s
    FOR UPDATE OF a SKIP LOCKED
)
UPDATE alarms a SET incident_id = free.incident_id, version = a.version + 1
FROM free WHERE a.alarm_id = free.alarm_id
RETURNING a.alarm_id
"""
OPEN_NEW = """
WITH burst AS (
    SELECT site, kind FROM alarms
    WHERE incident_id IS NULL AND state = 'raised' AND priority >= %(priority)s
      AND raised_at > now() - make_interval(secs => %(window_s)s)
    GROUP BY site, kind HAVING count(*) >= %(threshold)s
)
INSERT INTO incidents (site, kind) SELECT site, kind FROM burst
ON CONFLICT (site, kind) WHERE closed_at IS NULL DO NOTHING
RETURNING incident_id
"""
CLOSE_DONE = """
UPDATE incidents i SET closed_at = now()
WHERE i.closed_at IS NULL AND NOT EXISTS (
    SELECT 1 FROM alarms a WHERE a.incident_id = i.incident_id AND a.state <> 'resolved')
  AND i.opened_at < now() - make_interval(secs => %(window_s)s)
RETURNING incident_id
"""
FORGET_OLD = """
DELETE FROM incidents i WHERE i.closed_at < now() - interval '30 days'
  AND NOT EXISTS (SELECT 1 FROM alarms a WHERE a.incident_id = i.incident_id)
"""


class IncidentSweep:
    """Opens incidents for bursts of technical alarms, gathers their alarms, closes them."""

    name = "incidents"

    def __init__(self, *, settings: Settings) -> None:
        self._params = {
            "priority": TECHNICAL_PRIORITY,
            "window_s": settings.flood_window_s,
            "threshold": settings.flood_threshold,
        }

    def run(self, conn: Conn) -> int:
        opened = len(conn.execute(OPEN_NEW, self._params).fetchall())
        joined = len(conn.execute(JOIN_OPEN, self._params).fetchall())
        conn.execute(CLOSE_DONE, self._params)
        conn.execute(FORGET_OLD)
        return opened + joined


class IncidentRow(BaseModel):
    """An incident as the queue shows it: one row for many technical alarms."""

    model_config = ConfigDict(frozen=True)

    incident_id: uuid.UUID
    site: str
    kind: str
    opened_at: datetime
    closed_at: datetime | None
    alarms: int
    raised: int
    answered: int


LIST = """
SELECT i.incident_id, i.site, i.kind, i.opened_at, i.closed_at, count(a.alarm_id),
       count(*) FILTER (WHERE a.state = 'raised'), count(*) FILTER (WHERE a.state = 'answered')
FROM incidents i LEFT JOIN alarms a ON a.incident_id = i.incident_id
WHERE (%(open)s IS FALSE OR i.closed_at IS NULL)
  AND (%(id)s::uuid IS NULL OR i.incident_id = %(id)s)
GROUP BY i.incident_id ORDER BY i.opened_at
"""
MEMBERS = "SELECT alarm_id FROM alarms WHERE incident_id = %s AND state = ANY(%s) ORDER BY alarm_id"


class IncidentNotFound(LookupError):
    pass


async def list_incidents(
    conn: AsyncConn, *, open_only: bool = True, incident_id: uuid.UUID | None = None
) -> list[IncidentRow]:
    cur = await conn.execute(LIST, {"open": open_only, "id": incident_id})
    return [from_row(IncidentRow, r) for r in await cur.fetchall()]


async def act_on_all(
    conn: AsyncConn, incident_id: uuid.UUID, action: Action, **decision: Unpack[q.Decision]
) -> list[q.AlarmRow]:
    """`action` (answer or resolve) on every alarm of the incident it applies to, each moved
    and audited as if the operator had taken it alone; one that another operator moved in the
    meantime is left as it is."""
    if not await list_incidents(conn, open_only=False, incident_id=incident_id):
        raise IncidentNotFound(str(incident_id))
    states = ["raised"] if action is Action.ANSWER else ["answered"]
    moved: list[q.AlarmRow] = []
    async with conn.transaction():
        ids = [r[0] for r in await (await conn.execute(MEMBERS, (incident_id, states))).fetchall()]
        for alarm_id in ids:
            try:
                row = await q.act(conn, alarm_id, action, **decision)
            except (TransitionError, q.AlarmNotFound):
                continue
            moved.append(row)
    return moved
