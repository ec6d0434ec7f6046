"""What `alarms.selfwatch.silence` needs, read from the database (sync: engine, async: API)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alarms.selfwatch.silence import IngestBeat, silence_reasons
from larmkedja.db import AsyncConn, Conn
from larmkedja.settings import Settings

INGEST_BEATS = """
SELECT instance, seen_at, coalesce((details->>'mqtt_connected')::boolean, false),
       (details->>'disconnected_since')::timestamptz, (details->>'last_commit_at')::timestamptz,
       (details->>'oldest_pending_at')::timestamptz
FROM service_heartbeats WHERE service = 'ingest'
"""
# Bounded to recent chunks, so it stays cheap however long the hypertable gets.
LAST_EVENT = """
SELECT now(), (SELECT max(received_at) FROM events
               WHERE received_at > now() - make_interval(secs => %(look_back_s)s)),
       EXISTS (SELECT 1 FROM devices)
"""


def _params(settings: Settings) -> dict[str, float]:
    return {"look_back_s": settings.silence_s * 2 + 60}


def _reasons(settings: Settings, beats: list[tuple[Any, ...]], head: tuple[Any, ...]) -> list[str]:
    now: datetime = head[0]
    return silence_reasons(
        now=now,
        beats=[
            IngestBeat(
                instance=b[0],
                seen_at=b[1],
                mqtt_connected=b[2],
                disconnected_since=b[3],
                last_commit_at=b[4],
                oldest_pending_at=b[5],
            )
            for b in beats
        ],
        devices_registered=bool(head[2]),
        last_event_at=head[1],
        silence_s=settings.silence_s,
        stale_s=settings.service_stale_s,
        commit_stall_s=settings.commit_stall_s,
    )


def silence(conn: Conn, settings: Settings) -> list[str]:
    beats = conn.execute(INGEST_BEATS).fetchall()
    head = conn.execute(LAST_EVENT, _params(settings)).fetchone()
    return _reasons(settings, beats, head or (None, None, False))


async def silence_async(conn: AsyncConn, settings: Settings) -> list[str]:
    beats = await (await conn.execute(INGEST_BEATS)).fetchall()
    head = await (await conn.execute(LAST_EVENT, _params(settings))).fetchone()
    return _reasons(settings, beats, head or (None, None, False))
