"""Alarms from events, inside the ingest transaction (so an alarm exists iff its event does).

Each new `alarm.*` event raises an alarm (`tamper` and `link.lost` raise technical ones), or
folds into the open alarm of the same device and kind (`event_count` grows; one queue entry).
`alarm.cancel` flags the device's open safety alarms "reset at device"; they stay until an
operator resolves them. Events are applied in the order they were received, one statement each
(alarms are rare next to heartbeats).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import psycopg

from alarms.queue.lifecycle import priority_for
from larmkedja.db import Cursor
from larmkedja.events import CancelData, Kind, ReceivedEvent
from larmkedja.settings import Settings

# Raise the alarm or fold the press into the open one, link the event to it, and for a safety
# alarm (a test too), which proves the pendant's radio and battery: the device is not due a
# test, and a test an operator asked for has arrived. One statement, one round trip: an alarm's
# transaction is on the path to the operator's screen.
PRESS = """
WITH a AS (
    INSERT INTO alarms (site, device_id, kind, priority, raised_at, device_ts, last_event_at,
                        unanswered_due_at, details, test)
    VALUES (%(site)s, %(device_id)s, %(kind)s, %(priority)s, %(received_at)s, %(device_ts)s,
            %(received_at)s, %(received_at)s + make_interval(secs => %(unanswered_s)s),
            %(details)s::jsonb, %(test)s)
    ON CONFLICT (device_id, kind) WHERE state <> 'resolved'
    -- A real press folding into an open test alarm makes it a real alarm.
    DO UPDATE SET event_count = alarms.event_count + 1, test = alarms.test AND EXCLUDED.test,
                  last_event_at = greatest(alarms.last_event_at, EXCLUDED.last_event_at),
                  version = alarms.version + 1
    RETURNING alarm_id
), linked AS (
    INSERT INTO alarm_events (alarm_id, event_id, kind, received_at)
    SELECT alarm_id, %(event_id)s, %(kind)s, %(received_at)s FROM a
    ON CONFLICT DO NOTHING
), d AS (
    UPDATE devices SET last_alarm_at = greatest(last_alarm_at, %(received_at)s)
    WHERE device_id = %(device_id)s AND %(safety)s
), t AS (
    UPDATE test_requests SET arrived_at = %(received_at)s
    WHERE device_id = %(device_id)s AND arrived_at IS NULL AND failed_at IS NULL
      AND %(safety)s
)
SELECT alarm_id,
       CASE WHEN %(safety)s THEN
           larm_resolve_alert('device.test_due', %(device_id)s,
                              jsonb_build_object('alarm_at', %(received_at)s::timestamptz))
       END
FROM a
"""

# The system may end a technical alarm whose cause is gone (the link is back).
END_LINK_LOST = """
UPDATE alarms SET state = 'resolved', resolved_at = now(), resolved_by = 'system',
                  outcome = 'link restored', version = version + 1
WHERE device_id = %s AND kind = 'link.lost' AND state <> 'resolved'
"""

# Device faults that go to the operator queue as technical alarms (priority 4).
TECHNICAL_EVENTS = frozenset({Kind.TAMPER, Kind.LINK_LOST})

MARK_RESET = """
UPDATE alarms SET reset_at_device = %(received_at)s, version = version + 1
WHERE device_id = %(device_id)s AND state <> 'resolved' AND reset_at_device IS NULL
  AND kind LIKE 'alarm.%%' AND (%(alarm_kind)s::text IS NULL OR kind = %(alarm_kind)s)
"""


class AlarmProcessor:
    def __init__(self, *, settings: Settings) -> None:
        self._unanswered_s = settings.unanswered_alert_s

    def process(self, cur: Cursor, notable: Sequence[ReceivedEvent]) -> None:
        for received in notable:
            kind = received.event.kind
            if kind.is_alarm or kind in TECHNICAL_EVENTS:
                self._press(cur, received)
            elif kind is Kind.ALARM_CANCEL:
                self._cancel(cur, received)
            elif kind is Kind.LINK_RESTORED:
                cur.execute(END_LINK_LOST, (received.event.device_id,))

    def _press(self, cur: Cursor, received: ReceivedEvent) -> None:
        event = received.event
        details = {k: v for k, v in event.data.items() if k == "component"}
        cur.execute(
            PRESS,
            {
                "site": received.site,
                "device_id": event.device_id,
                "kind": event.kind.value,
                "priority": priority_for(event.kind.value),
                "received_at": received.received_at,
                "device_ts": event.ts,
                "unanswered_s": self._unanswered_s,
                "details": orjson.dumps(details).decode(),
                # A test alarm (contract §6): `"data": {"test": true}`, nothing else.
                "test": event.data.get("test") is True,
                "event_id": event.event_id,
                "safety": event.kind.is_alarm,
            },
        )
        if cur.fetchone() is None:  # pragma: no cover - the upsert always returns its row
            raise psycopg.DataError("alarm upsert returned nothing")

    def _cancel(self, cur: Cursor, received: ReceivedEvent) -> None:
        data = received.event.typed_data()
        alarm_kind = data.alarm_kind if isinstance(data, CancelData) else None
        cur.execute(
            MARK_RESET,
            {
                "received_at": received.received_at,
                "device_id": received.event.device_id,
                "alarm_kind": alarm_kind.value if alarm_kind else None,
            },
        )
