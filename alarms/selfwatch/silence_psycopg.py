"""What `alarms.selfwatch.silence` needs, read from the database in one statement. The engine
(sync) and `/readyz` (async) each run `SILENCE` on their own connection and pass the rows to
`reasons`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from alarms.selfwatch.silence import IngestBeat, silence_reasons
from larmkedja.settings import Settings

# One row per ingest instance (or one row of NULLs without any), each with the head: the
# database's time, the last device event (bounded to recent chunks, so it stays cheap however
# long the hypertable gets) and whether any device is registered.
SILENCE = """
SELECT h.now, h.last_event_at, h.devices_registered,
       b.instance, b.seen_at, coalesce((b.details->>'mqtt_connected')::boolean, false),
       (b.details->>'disconnected_since')::timestamptz,
       (b.details->>'last_commit_at')::timestamptz,
       (b.details->>'oldest_pending_at')::timestamptz
FROM (SELECT now() AS now,
             (SELECT max(received_at) FROM events
              WHERE received_at > now() - make_interval(secs => %(look_back_s)s)) AS last_event_at,
             EXISTS (SELECT 1 FROM devices) AS devices_registered) h
LEFT JOIN service_heartbeats b ON b.service = 'ingest'
"""


def params(settings: Settings) -> dict[str, float]:
    return {"look_back_s": settings.silence_s * 2 + 60}


def reasons(settings: Settings, rows: Sequence[Sequence[Any]]) -> list[str]:
    """Why the system is silent (empty: it is not), from the rows of `SILENCE`."""
    if not rows:  # pragma: no cover - the statement always returns its head
        return []
    now: datetime = rows[0][0]
    return silence_reasons(
        now=now,
        beats=[
            IngestBeat(
                instance=r[3],
                seen_at=r[4],
                mqtt_connected=r[5],
                disconnected_since=r[6],
                last_commit_at=r[7],
                oldest_pending_at=r[8],
            )
            for r in rows
            if r[3] is not None
        ],
        devices_registered=bool(rows[0][2]),
        last_event_at=rows[0][1],
        silence_s=settings.silence_s,
        stale_s=settings.service_stale_s,
        commit_stall_s=settings.commit_stall_s,
    )
