"""A known burst of events (heartbeats, and alarms pressed more than once) and the exact checks
that every one of them is stored once and every alarm is in the queue once."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import psycopg

from larmkedja.events import DeviceEvent, Kind
from tests.helpers import make_event, publish_all

SITE = "burst"


@dataclass
class Burst:
    total: int
    alarm_every: int = 200
    presses: Counter[str] = field(default_factory=Counter)
    events: list[DeviceEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i in range(self.total):
            if i % self.alarm_every == 0:
                device = f"a-{(i // self.alarm_every) % 40:03d}"  # some alarms pressed again
                self.presses[device] += 1
                self.events.append(make_event(device, Kind.ALARM_BUTTON))
            else:
                self.events.append(make_event(f"h-{i % 700}", Kind.HEARTBEAT))

    def messages(self) -> list[tuple[str, bytes]]:
        return [(e.topic(SITE), e.to_json()) for e in self.events]

    def publish_in_background(
        self, host: str, port: int, *, careless: list[int] | None = None
    ) -> threading.Thread:
        """Publish the burst from a thread (`careless`: never send again, see `publish_all`)."""
        thread = threading.Thread(
            target=publish_all,
            args=(host, port, self.messages()),
            kwargs={"careless": careless},
            daemon=True,
        )
        thread.start()
        return thread

    def stored(self, database_url: str) -> int:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT count(*) FROM events WHERE site = %s", (SITE,)).fetchone()
        return int(row[0]) if row else 0

    def verify(self, database_url: str) -> None:
        """Every event stored exactly once; every alarm in the queue exactly once, holding
        every press, with its true raised_at (the first press as the system stored it)."""
        with psycopg.connect(database_url) as conn:
            total, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM events WHERE site = %s", (SITE,)
            ).fetchone() or (0, 0)
            assert (total, distinct) == (self.total, self.total), (total, distinct)
            ids = {
                str(r[0])
                for r in conn.execute("SELECT event_id FROM events WHERE site = %s", (SITE,))
            }
            assert ids == {str(e.event_id) for e in self.events}
            alarms = conn.execute(
                "SELECT a.device_id, a.event_count, a.raised_at,"
                "       (SELECT min(e.received_at) FROM events e"
                "        WHERE e.device_id = a.device_id AND e.kind = 'alarm.button')"
                " FROM alarms a WHERE a.kind = 'alarm.button' AND a.site = 'burst'"
            ).fetchall()
        assert len(alarms) == len(self.presses), "one queue entry per device and kind"
        assert {d: n for d, n, _, _ in alarms} == dict(self.presses), "every press folded in"
        for device, _, raised_at, first_stored in alarms:
            assert raised_at == first_stored, f"{device}: raised_at is not its first event"
