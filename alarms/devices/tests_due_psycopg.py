"""Alarms that are proven to work: tests due and tests asked for (issue 20, contract §6).

A heartbeat proves the base unit, not the pendant's radio or battery. The engine's sweep
raises `device.test_due` for a device with no safety alarm and no test for
LARM_TEST_DUE_DAYS (ingest ends it when one arrives, in the alarm's own transaction), and
turns a test an operator asked for that has not arrived by its deadline into the technical
alarm `device.test_failed`. The sweep reads the device registry, so it runs every
LARM_TEST_DUE_EVERY_S and raises at most `BATCH` alerts a run (a fleet never tested becomes due
progressively, not in one burst of alerts). A person away (an absence window: hospital, travel)
pauses it for their devices; the supervisor's list shows a device that was due before its person
left as away, with when they are back.
"""

from __future__ import annotations

import time
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from alarms.people.lookups_psycopg import absent_at
from larmkedja.db import AsyncConn, Conn, from_row
from larmkedja.settings import Settings

BATCH = 1000
RAISE_DUE = f"""
SELECT larm_raise_alert(d.site, 'device.test_due', 'warning', d.device_id,
       jsonb_build_object('device_id', d.device_id, 'last_alarm_at', d.last_alarm_at,
                          'days', %(days)s))
FROM devices d
WHERE coalesce(d.last_alarm_at, d.first_seen) < now() - make_interval(secs => %(interval_s)s)
  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.kind = 'device.test_due'
                  AND a.subject = d.device_id AND a.resolved_at IS NULL)
  AND NOT {absent_at("d.device_id", "now()")}
ORDER BY coalesce(d.last_alarm_at, d.first_seen), d.device_id
LIMIT %(batch)s
"""  # noqa: S608 - SQL of constants
FAIL_LATE = """
WITH late AS (
    UPDATE test_requests SET failed_at = now()
    WHERE due_at <= now() AND arrived_at IS NULL AND failed_at IS NULL
    RETURNING device_id, site, requested_at, requested_by
)
INSERT INTO alarms (site, device_id, kind, priority, source, raised_at, last_event_at,
                    unanswered_due_at, details)
SELECT site, device_id, 'device.test_failed', 4, 'system', now(), now(),
       now() + make_interval(secs => %(unanswered_s)s),
       jsonb_build_object('requested_at', requested_at, 'requested_by', requested_by)
FROM late
ON CONFLICT (device_id, kind) WHERE state <> 'resolved'
DO UPDATE SET event_count = alarms.event_count + 1, version = alarms.version + 1
RETURNING alarm_id
"""


class DueTestSweep:
    """`device.test_due` for silent pendants; `device.test_failed` for a test that never came."""

    name = "tests_due"

    def __init__(self, *, settings: Settings) -> None:
        self._params = {
            "days": settings.test_due_days,
            "interval_s": settings.test_due_days * 86_400.0,
            "batch": BATCH,
            "unanswered_s": settings.unanswered_alert_s,
        }
        self._every_s = settings.test_due_every_s
        self._next = 0.0

    def run(self, conn: Conn) -> int:
        failed = len(conn.execute(FAIL_LATE, self._params).fetchall())
        now = time.monotonic()
        if now < self._next:
            return failed
        self._next = now + self._every_s
        return failed + len(conn.execute(RAISE_DUE, self._params).fetchall())


class RequestedTest(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    device_id: str
    requested_at: datetime
    requested_by: str
    due_at: datetime


class DueTest(BaseModel):
    """A device listed for a test call (the supervisor's list)."""

    model_config = ConfigDict(frozen=True)

    device_id: str
    site: str
    last_alarm_at: datetime | None
    due_since: datetime
    away: bool = Field(description="its person is away now (an absence): not due until back")
    away_until: datetime | None = Field(description="when the person's absence ends")


REQUEST = """
INSERT INTO test_requests (device_id, site, requested_by, due_at)
SELECT device_id, site, %(by)s, now() + make_interval(secs => %(window_s)s)
FROM devices WHERE device_id = %(device_id)s
ON CONFLICT (device_id) WHERE arrived_at IS NULL AND failed_at IS NULL
DO UPDATE SET due_at = EXCLUDED.due_at
RETURNING request_id::text, device_id, requested_at, requested_by, due_at
"""
DUE = """
SELECT d.device_id, d.site, d.last_alarm_at, a.raised_at, w.until IS NOT NULL, w.until
FROM alerts a JOIN devices d ON d.device_id = a.subject
LEFT JOIN LATERAL (
    SELECT max(x.ends_at) AS until
    FROM larm_persons_of(d.device_id, NULL) who, larm_absences_at(who.person_ref, now()) x
) w ON true
WHERE a.kind = 'device.test_due' AND a.resolved_at IS NULL
  AND (%(site)s::text IS NULL OR d.site = %(site)s)
ORDER BY w.until IS NOT NULL, a.raised_at, d.device_id
LIMIT %(limit)s
"""


async def request_test(
    conn: AsyncConn, *, device_id: str, by: str, window_s: float
) -> RequestedTest | None:
    """Ask the device's user for a test press now; None if there is no such device."""
    params = {"device_id": device_id, "by": by, "window_s": window_s}
    row = await (await conn.execute(REQUEST, params)).fetchone()
    return from_row(RequestedTest, row) if row else None


async def tests_due(conn: AsyncConn, *, site: str | None, limit: int = 5000) -> list[DueTest]:
    rows = await (await conn.execute(DUE, {"site": site, "limit": limit})).fetchall()
    return [from_row(DueTest, r) for r in rows]
