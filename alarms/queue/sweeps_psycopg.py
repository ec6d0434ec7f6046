"""Deadline sweeps of the alarm chain, run by the engine every tick, each in one transaction.

Deadlines live in indexed columns (`unanswered_due_at`, …); a sweep moves every due one with a
single `UPDATE … WHERE due <= now() RETURNING`, so each fires once even with several engines
(row locks; the second sees the moved deadline), and a restarted engine fires the overdue ones
at its first tick.
"""

from __future__ import annotations

import logging
import math

from prometheus_client import CollectorRegistry
from psycopg.types.json import Jsonb

from alarms.queue.answer_time import AlertChange, mean_alert_change
from larmkedja.db import Conn
from larmkedja.events import AlertKind
from larmkedja.metrics import gauge
from larmkedja.settings import Settings
from larmkedja.sweeps import StatementSweep

log = logging.getLogger(__name__)


# An alarm whose row another transaction holds is skipped this tick: ingest is folding a press
# into it or resolving it (a device back online), or an operator is answering it; if it is
# still raised and due, the next tick takes it. Waiting instead deadlocked with ingest, which
# resolves the `device.offline` alarms of a batch's devices in its own order (seen eight times
# in a 30-minute soak in which nobody answered the technical alarms).
FIRE_UNANSWERED = """
WITH locked AS (
    SELECT alarm_id FROM alarms
    WHERE state = 'raised' AND unanswered_due_at <= now()
    ORDER BY alarm_id
    FOR UPDATE SKIP LOCKED
), due AS (
    UPDATE alarms a
    SET unanswered_alerts = a.unanswered_alerts + 1,
        unanswered_due_at = now() + make_interval(secs => %(repeat_s)s)
    FROM locked
    WHERE a.alarm_id = locked.alarm_id AND a.state = 'raised' AND a.unanswered_due_at <= now()
    RETURNING a.alarm_id, a.site, a.device_id, a.kind, a.priority, a.raised_at,
              a.unanswered_alerts
)
SELECT larm_raise_or_repeat_alert(
    site, 'alarm.unanswered', 'critical', alarm_id::text,
    jsonb_build_object(
        'alarm_id', alarm_id, 'device_id', device_id, 'alarm_kind', kind,
        'priority', priority, 'raised_at', raised_at, 'repeat', unanswered_alerts,
        'waiting_s', round(extract(epoch FROM now() - raised_at)::numeric, 1)))
FROM due
"""


class UnansweredSweep(StatementSweep):
    """`alarm.unanswered` once an alarm waits LARM_UNANSWERED_ALERT_S, again every period."""

    name = "alarm_unanswered"
    statement = FIRE_UNANSWERED

    @staticmethod
    def params(settings: Settings) -> dict[str, object]:
        return {"repeat_s": settings.unanswered_alert_s}


# An alarm answered and then left: nobody resolved or escalated it. Once per alarm (it is
# answered once); the alert ends when it leaves `answered` (migration 0010's trigger). Rows
# another transaction holds are skipped this tick, as above.
FIRE_STALE = """
WITH locked AS (
    SELECT alarm_id FROM alarms
    WHERE state = 'answered' AND stale_alerted_at IS NULL
      AND answered_at <= now() - make_interval(secs => %(stale_s)s)
    ORDER BY alarm_id
    FOR UPDATE SKIP LOCKED
), due AS (
    UPDATE alarms a SET stale_alerted_at = now()
    FROM locked
    WHERE a.alarm_id = locked.alarm_id AND a.state = 'answered' AND a.stale_alerted_at IS NULL
    RETURNING a.alarm_id, a.site, a.device_id, a.kind, a.answered_at
)
SELECT larm_raise_or_repeat_alert(
    site, 'alarm.stale', 'warning', alarm_id::text,
    jsonb_build_object(
        'alarm_id', alarm_id, 'device_id', device_id, 'alarm_kind', kind,
        'answered_at', answered_at,
        'answered_for_s', round(extract(epoch FROM now() - answered_at)::numeric, 1)))
FROM due
"""


class StaleSweep(StatementSweep):
    """`alarm.stale` once an answered alarm has waited LARM_STALE_ANSWERED_MINUTES for its
    outcome."""

    name = "alarm_stale"
    statement = FIRE_STALE

    @staticmethod
    def params(settings: Settings) -> dict[str, object]:
        return {"stale_s": settings.stale_answered_minutes * 60.0}


# Safety alarms from devices only: technical and supervision alarms are not "answer time".
ROLLING_MEANS = """
SELECT site, avg(extract(epoch FROM answered_at - raised_at))::float8, count(*)
FROM alarms
WHERE answered_at > now() - make_interval(secs => %(window_s)s) AND answered_at <= now()
  AND source = 'device' AND kind LIKE 'alarm.%%' AND NOT test
GROUP BY site
"""
ACTIVE_MEAN_ALERTS = """
SELECT subject FROM alerts
WHERE kind = 'answer_time.mean_above_target' AND resolved_at IS NULL
"""
ALL_SITES_MEAN = """
SELECT avg(extract(epoch FROM answered_at - raised_at))::float8
FROM alarms
WHERE answered_at > now() - make_interval(secs => %(window_s)s) AND answered_at <= now()
  AND source = 'device' AND kind LIKE 'alarm.%%' AND NOT test
"""


class AnswerTimeSweep:
    """Per site: `answer_time.mean_above_target` while the rolling mean is above the target."""

    name = "answer_time_mean"
    kind = AlertKind.ANSWER_TIME_MEAN_ABOVE_TARGET.value

    def __init__(self, *, settings: Settings, registry: CollectorRegistry) -> None:
        self._window_s = settings.answer_window_s
        self._target_s = settings.answer_target_s
        self._rolling_mean = gauge(
            registry,
            "larm_answer_time_rolling_mean_seconds",
            "Mean answer time over LARM_ANSWER_WINDOW_S, all sites (NaN without answers).",
        )
        self._target = gauge(
            registry,
            "larm_answer_time_target_seconds",
            "The answer-time target (LARM_ANSWER_TARGET_S).",
        )

    def run(self, conn: Conn) -> int:
        params = {"window_s": self._window_s}
        means = {
            str(site): (float(mean), int(n))
            for site, mean, n in conn.execute(ROLLING_MEANS, params).fetchall()
        }
        active = {str(row[0]) for row in conn.execute(ACTIVE_MEAN_ALERTS).fetchall()}
        fired = 0
        for site in sorted(set(means) | active):
            mean, count = means.get(site, (None, 0))
            change = mean_alert_change(active=site in active, mean_s=mean, target_s=self._target_s)
            if change is None:
                continue
            details = Jsonb(
                {
                    "mean_s": mean,
                    "count": count,
                    "target_s": self._target_s,
                    "window_s": self._window_s,
                }
            )
            if change is AlertChange.RAISE:
                conn.execute(
                    "SELECT larm_raise_alert(%s, %s, 'warning', %s, %s)",
                    (site, self.kind, site, details),
                )
            else:
                conn.execute("SELECT larm_resolve_alert(%s, %s, %s)", (self.kind, site, details))
            fired += 1
        row = conn.execute(ALL_SITES_MEAN, params).fetchone()
        overall = row[0] if row else None
        self._rolling_mean.set(float(overall) if overall is not None else math.nan)
        self._target.set(self._target_s)
        return fired


QUEUE_GAUGES = """
SELECT priority, count(*),
       count(*) FILTER (WHERE state = 'raised'),
       coalesce(extract(epoch FROM now() - min(raised_at) FILTER (WHERE state = 'raised')), 0)
FROM alarms WHERE state <> 'resolved' GROUP BY priority
"""


class QueueGauges:
    """Refresh the queue gauges (open by priority, unanswered, oldest waiting)."""

    name = "queue_gauges"

    def __init__(self, *, registry: CollectorRegistry) -> None:
        self._open = gauge(
            registry, "larm_alarms_open", "Open alarms (not resolved), by priority.", "priority"
        )
        self._unanswered = gauge(
            registry, "larm_alarms_unanswered", "Alarms nobody has answered yet."
        )
        self._oldest = gauge(
            registry,
            "larm_alarm_oldest_unanswered_seconds",
            "Age of the oldest unanswered alarm (0 when none waits).",
        )

    def run(self, conn: Conn) -> int:
        rows = conn.execute(QUEUE_GAUGES).fetchall()
        by_priority = {int(r[0]): int(r[1]) for r in rows}
        for priority in range(1, 6):
            self._open.labels(str(priority)).set(by_priority.get(priority, 0))
        self._unanswered.set(sum(int(r[2]) for r in rows))
        self._oldest.set(max((float(r[3]) for r in rows), default=0.0))
        return 0
