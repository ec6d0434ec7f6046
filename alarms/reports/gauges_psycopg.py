"""The service levels as Prometheus gauges, over the last 24 hours (the engine refreshes them
every `every_s`): the shares of safety alarms answered within 60 s and 180 s (the TSA code asks
97.5 % and 99 %), and the share of patrol arrivals within the promise of the person's area."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from alarms.reports.service_level_psycopg import ARRIVED
from larmkedja.db import Conn
from larmkedja.metrics import gauge
from larmkedja.settings import Settings

WINDOW_S = 86_400.0
ANSWER_SHARES = """
SELECT avg((answered_at - raised_at <= interval '60 s')::int)::float8,
       avg((answered_at - raised_at <= interval '180 s')::int)::float8
FROM alarms
WHERE answered_at > now() - make_interval(secs => %(window_s)s)
  AND source = 'device' AND kind LIKE 'alarm.%%' AND NOT test
"""
ARRIVAL_SHARE = f"""
SELECT avg((s <= promise_s)::int)::float8 FROM ({ARRIVED}) e
"""  # noqa: S608 - constants


class ServiceLevelGauges:
    name = "service_level_gauges"

    def __init__(
        self, *, settings: Settings, registry: CollectorRegistry, every_s: float = 60.0
    ) -> None:
        self._settings = settings
        self._every_s = every_s
        self._next = 0.0
        self._answer = gauge(
            registry,
            "larm_answer_within_ratio",
            "Share of safety alarms answered within `bound` seconds, last 24 h (NaN: none).",
            "bound",
        )
        self._arrival = gauge(
            registry,
            "larm_arrival_within_promise_ratio",
            "Share of patrol arrivals within the area's promise, last 24 h (NaN: none).",
        )

    def run(self, conn: Conn) -> int:
        now = time.monotonic()
        if now < self._next:
            return 0
        self._next = now + self._every_s
        answers = conn.execute(ANSWER_SHARES, {"window_s": WINDOW_S}).fetchone()
        for bound, share in zip(("60", "180"), answers or (None, None), strict=True):
            self._answer.labels(bound).set(math.nan if share is None else share)
        until = datetime.now(UTC)
        params = {
            "since": until - timedelta(seconds=WINDOW_S),
            "until": until,
            "site": None,
            "town_s": self._settings.arrival_promise_town_s,
            "rural_s": self._settings.arrival_promise_rural_s,
        }
        row = conn.execute(ARRIVAL_SHARE, params).fetchone()
        self._arrival.set(math.nan if row is None or row[0] is None else row[0])
        return 0
