"""The engine's sweep of the hand-over notes: a note the patrol has not acknowledged by its
`due_at` raises `handover.unacknowledged` to the supervisor, once (acknowledging it ends the
alert, migration 0013); notes are removed once their night is older than the alarms' retention.
"""

from __future__ import annotations

import time

from larmkedja.db import Conn
from larmkedja.events import AlertKind
from larmkedja.settings import Settings

# Rows another transaction holds (the patrol acknowledging it now) are skipped this tick. The
# alert names the note and the person's ref, never the text.
FIRE_UNACKNOWLEDGED = f"""
WITH locked AS (
    SELECT note_id FROM handover_notes
    WHERE acknowledged_at IS NULL AND alerted_at IS NULL AND due_at <= now()
    ORDER BY due_at, note_id
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
), due AS (
    UPDATE handover_notes n SET alerted_at = now()
    FROM locked
    WHERE n.note_id = locked.note_id AND n.acknowledged_at IS NULL AND n.alerted_at IS NULL
    RETURNING n.note_id, n.person_ref, n.site, n.created_at, n.due_at
)
SELECT larm_raise_alert(
    site, '{AlertKind.HANDOVER_UNACKNOWLEDGED.value}', 'critical', 'handover:' || note_id,
    jsonb_build_object('note_id', note_id, 'person_ref', person_ref, 'created_at', created_at,
                       'due_at', due_at))
FROM due
"""  # noqa: S608 - the kind is a constant
EXPIRE = """
DELETE FROM handover_notes
WHERE shown_until < now() - make_interval(days => (
    SELECT value::integer FROM larm_config WHERE key = 'alarm_retention_days'))
"""


class HandoverSweep:
    """`handover.unacknowledged` for every note past its time; old notes removed hourly."""

    name = "handover_unacknowledged"

    def __init__(self, *, settings: Settings) -> None:
        self._expire_every_s = settings.retention_every_s
        self._next_expiry = 0.0

    def run(self, conn: Conn) -> int:
        fired = len(conn.execute(FIRE_UNACKNOWLEDGED).fetchall())
        if time.monotonic() >= self._next_expiry:
            self._next_expiry = time.monotonic() + self._expire_every_s
            conn.execute(EXPIRE)
        return fired
