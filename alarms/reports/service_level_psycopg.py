"""The service-level report in SQL (contract §6): every figure over the stored alarms,
escalations, night checks and alerts of one site (or all) and period [since, until).

Alarms count by when they were raised; answer times are of safety alarms from devices
(`kind` `alarm.*`, not tests), the same set as the answer-time KPI; arrivals are escalations
created in the period that reached the door; percentiles are `percentile_cont` (linear
between the two nearest values). Test alarms count nowhere here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alarms.people.lookups_psycopg import person_column
from alarms.reports.rules import (
    ANSWER_EDGES_S,
    AREA_TYPES,
    ARRIVAL_EDGES_S,
    AlarmCounts,
    AnswerFigures,
    AreaArrivals,
    AreaBin,
    ArrivalFigures,
    Availability,
    Bin,
    Breach,
    HourFigures,
    NightFigures,
    ServiceLevel,
    edges,
    link_for,
)
from larmkedja.db import AsyncConn
from larmkedja.settings import Settings

IN_PERIOD = "(%(site)s::text IS NULL OR site = %(site)s) AND NOT test"
SAFETY = "source = 'device' AND kind LIKE 'alarm.%%'"

ALARMS = f"""
SELECT kind, priority, count(*) FROM alarms
WHERE raised_at >= %(since)s AND raised_at < %(until)s AND {IN_PERIOD}
GROUP BY kind, priority
"""  # noqa: S608 - constants
ANSWERS = f"""
WITH a AS (
    SELECT extract(epoch FROM answered_at - raised_at)::float8 AS s FROM alarms
    WHERE raised_at >= %(since)s AND raised_at < %(until)s AND {IN_PERIOD} AND {SAFETY}
      AND answered_at IS NOT NULL
)
SELECT count(*), avg(s), percentile_cont(0.5) WITHIN GROUP (ORDER BY s),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY s),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY s), max(s),
       avg((s <= 60)::int)::float8, avg((s <= 180)::int)::float8
FROM a
"""  # noqa: S608 - constants
# Escalations that reached the door, with the promise of the person's area (`area_type` of
# the person of the escalation's device or plan; a device nobody is linked to is held to the
# town's).
ARRIVED = f"""
SELECT e.alarm_id, e.check_id, e.created_at,
       extract(epoch FROM e.arrived_at - e.created_at)::float8 AS s,
       CASE WHEN coalesce(p.area_type, 'town') = 'rural' THEN %(rural_s)s
            ELSE %(town_s)s END AS promise_s,
       CASE WHEN coalesce(p.area_type, 'town') = 'rural' THEN 'rural' ELSE 'town' END AS area
FROM escalations e
LEFT JOIN alarms a ON a.alarm_id = e.alarm_id
LEFT JOIN LATERAL (
    SELECT {person_column("area_type", "e.device_id", "e.plan_id")} AS area_type
) p ON true
WHERE e.created_at >= %(since)s AND e.created_at < %(until)s
  AND (%(site)s::text IS NULL OR e.site = %(site)s) AND a.test IS NOT TRUE
  AND e.arrived_at IS NOT NULL
"""  # noqa: S608 - SQL of constants
ARRIVALS = f"""
SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY s),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY s), max(s),
       avg((s <= promise_s)::int)::float8
FROM ({ARRIVED}) e
"""  # noqa: S608 - constants
# The same per area type (both always listed, in AREA_TYPES' order).
ARRIVAL_AREAS = f"""
SELECT t.area, CASE t.area WHEN 'rural' THEN %(rural_s)s ELSE %(town_s)s END::float8,
       count(e.s), percentile_cont(0.5) WITHIN GROUP (ORDER BY e.s),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY e.s), max(e.s),
       avg((e.s <= e.promise_s)::int)::float8
FROM unnest(%(areas)s::text[]) WITH ORDINALITY t(area, o)
LEFT JOIN ({ARRIVED}) e ON e.area = t.area
GROUP BY t.area, t.o ORDER BY t.o
"""  # noqa: S608 - constants
# The distributions: a value s is in bin i (0-based) when i of the upper bounds lie below it, so
# bin i is (bound[i-1], bound[i]]: an answer at exactly 60 s counts left of the 60 s line, as it
# counts within 60 s. With the bounds negated and ascending, width_bucket(-s, …) is the number
# of bounds at or above s (one pass, no join of each value against each bin).


def _bin(name: str) -> str:
    return f"(cardinality(%({name})s::float8[]) - width_bucket(-s, %(neg_{name})s::float8[]))"


def _bins(name: str) -> str:
    return f"""
SELECT i, CASE WHEN i = 0 THEN 0 ELSE (%({name})s::float8[])[i] END AS lo,
       (%({name})s::float8[])[i + 1] AS hi
FROM generate_series(0, cardinality(%({name})s::float8[])) i
"""  # noqa: S608 - constants


ANSWER_HISTOGRAM = f"""
WITH a AS (
    SELECT {_bin("answer_edges")} AS i, count(*) AS n FROM (
        SELECT extract(epoch FROM answered_at - raised_at)::float8 AS s FROM alarms
        WHERE raised_at >= %(since)s AND raised_at < %(until)s AND {IN_PERIOD} AND {SAFETY}
          AND answered_at IS NOT NULL
    ) x GROUP BY 1
)
SELECT b.lo, b.hi, coalesce(a.n, 0)
FROM ({_bins("answer_edges")}) b LEFT JOIN a ON a.i = b.i ORDER BY b.i
"""  # noqa: S608 - constants
ARRIVAL_HISTOGRAM = f"""
WITH a AS (
    SELECT area, {_bin("arrival_edges")} AS i, count(*) AS n FROM ({ARRIVED}) e GROUP BY 1, 2
)
SELECT b.lo, b.hi, coalesce(a.n, 0), t.area
FROM unnest(%(areas)s::text[]) WITH ORDINALITY t(area, o) CROSS JOIN ({_bins("arrival_edges")}) b
LEFT JOIN a ON a.area = t.area AND a.i = b.i
ORDER BY t.o, b.i
"""  # noqa: S608 - constants
NIGHT = """
SELECT count(*), count(*) FILTER (WHERE state = 'done_ok'),
       count(*) FILTER (WHERE recheck_due_at IS NOT NULL),
       count(*) FILTER (WHERE state = 'missed'), count(*) FILTER (WHERE state = 'escalated')
FROM supervision_checks
WHERE scheduled_for >= %(since)s AND scheduled_for < %(until)s
  AND (%(site)s::text IS NULL OR site = %(site)s)
"""
# Device-hours: each device from when it was first seen (or the period's start) to the end of
# the period or now, whichever is first (hours not yet come are neither online nor offline);
# offline: the `device.offline` alerts' time inside that.
AVAILABILITY = """
WITH period AS (
    SELECT %(since)s::timestamptz AS since, least(%(until)s::timestamptz, now()) AS until
), span AS (
    SELECT coalesce(sum(extract(epoch FROM p.until - greatest(first_seen, p.since))), 0)::float8
           AS s
    FROM devices, period p
    WHERE first_seen < p.until AND (%(site)s::text IS NULL OR site = %(site)s)
), down AS (
    SELECT count(*) AS episodes,
           coalesce(sum(extract(epoch FROM least(coalesce(resolved_at, now()), p.until)
                                - greatest(raised_at, p.since))), 0)::float8 AS s
    FROM alerts, period p
    WHERE kind = 'device.offline' AND raised_at < p.until
      AND coalesce(resolved_at, now()) > p.since
      AND (%(site)s::text IS NULL OR site = %(site)s)
)
SELECT CASE WHEN span.s > 0 THEN 1 - least(down.s, span.s) / span.s END, down.episodes
FROM span, down
"""
BY_HOUR = f"""
SELECT extract(hour FROM raised_at AT TIME ZONE %(tz)s)::int AS h, count(*),
       count(answered_at), avg(extract(epoch FROM answered_at - raised_at))::float8,
       count(*) FILTER (WHERE extract(epoch FROM answered_at - raised_at) <= 60),
       count(*) FILTER (WHERE extract(epoch FROM answered_at - raised_at) <= 180)
FROM alarms
WHERE raised_at >= %(since)s AND raised_at < %(until)s AND {IN_PERIOD} AND {SAFETY}
GROUP BY h ORDER BY h
"""  # noqa: S608 - constants
BREACHES = f"""
SELECT alarm_id, NULL::bigint, 'answer_time', extract(epoch FROM answered_at - raised_at)::float8,
       raised_at
FROM alarms
WHERE raised_at >= %(since)s AND raised_at < %(until)s AND {IN_PERIOD} AND {SAFETY}
  AND answered_at - raised_at > make_interval(secs => %(bound_s)s)
UNION ALL
SELECT alarm_id, NULL, 'unanswered',
       extract(epoch FROM least(now(), %(until)s) - raised_at)::float8, raised_at
FROM alarms
WHERE raised_at >= %(since)s AND raised_at < %(until)s AND {IN_PERIOD} AND {SAFETY}
  AND answered_at IS NULL
  AND least(now(), %(until)s) - raised_at > make_interval(secs => %(bound_s)s)
UNION ALL
SELECT alarm_id, check_id, 'arrival', s, created_at FROM ({ARRIVED}) e WHERE s > promise_s
UNION ALL
SELECT NULL, check_id, 'check_missed', NULL, scheduled_for
FROM supervision_checks
WHERE scheduled_for >= %(since)s AND scheduled_for < %(until)s
  AND (%(site)s::text IS NULL OR site = %(site)s) AND state = 'missed'
ORDER BY 5, 3
LIMIT %(max_breaches)s
"""  # noqa: S608 - constants


async def _one(conn: AsyncConn, sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    row = await (await conn.execute(sql, params)).fetchone()
    assert row is not None  # noqa: S101 - an aggregate always returns its row
    return tuple(row)


async def _answer(conn: AsyncConn, params: dict[str, Any]) -> AnswerFigures:
    row = await _one(conn, ANSWERS, params)
    names = ("count", "mean_s", "p50_s", "p90_s", "p95_s", "max_s")
    bins = await (await conn.execute(ANSWER_HISTOGRAM, params)).fetchall()
    return AnswerFigures(
        **dict(zip(names, row[:6], strict=True)),
        within_60s_ratio=row[6],
        within_180s_ratio=row[7],
        histogram=[Bin(from_s=lo, to_s=hi, count=n) for lo, hi, n in bins],
    )


async def _arrival(conn: AsyncConn, params: dict[str, Any]) -> ArrivalFigures:
    count, p50, p90, top, ratio = await _one(conn, ARRIVALS, params)
    names = ("area_type", "promise_s", "count", "p50_s", "p90_s", "max_s", "within_promise_ratio")
    areas = await (await conn.execute(ARRIVAL_AREAS, params)).fetchall()
    bins = await (await conn.execute(ARRIVAL_HISTOGRAM, params)).fetchall()
    return ArrivalFigures(
        count=count,
        p50_s=p50,
        p90_s=p90,
        max_s=top,
        within_promise_ratio=ratio,
        by_area=[AreaArrivals(**dict(zip(names, r, strict=True))) for r in areas],
        histogram=[AreaBin(from_s=lo, to_s=hi, count=n, area_type=a) for lo, hi, n, a in bins],
    )


def _edges(settings: Settings) -> dict[str, list[float]]:
    """The bins' upper bounds for the SQL, and the same negated and ascending (`_bin`)."""
    found = {
        "answer_edges": edges(ANSWER_EDGES_S, settings.report_answer_bound_s),
        "arrival_edges": edges(
            ARRIVAL_EDGES_S, settings.arrival_promise_town_s, settings.arrival_promise_rural_s
        ),
    }
    return found | {f"neg_{k}": sorted(-e for e in v) for k, v in found.items()}


def _night(row: tuple[Any, ...]) -> NightFigures:
    planned, done, rechecked, missed, escalated = row
    return NightFigures(
        planned=planned, done_in_time=done, rechecked=rechecked, missed=missed, escalated=escalated
    )


def _breach(row: tuple[Any, ...]) -> Breach:
    alarm_id, check_id, what, value, at = row
    return Breach(
        alarm_id=alarm_id,
        check_id=check_id,
        what=what,
        value_s=value,
        at=at,
        link=link_for(alarm_id=alarm_id, check_id=check_id),
    )


async def _alarms(conn: AsyncConn, params: dict[str, Any]) -> AlarmCounts:
    kinds: dict[str, int] = {}
    priorities: dict[str, int] = {}
    for kind, priority, n in await (await conn.execute(ALARMS, params)).fetchall():
        kinds[kind] = kinds.get(kind, 0) + n
        priorities[str(priority)] = priorities.get(str(priority), 0) + n
    return AlarmCounts(count=sum(kinds.values()), by_kind=kinds, by_priority=priorities)


async def service_level(
    conn: AsyncConn, *, settings: Settings, site: str | None, since: datetime, until: datetime
) -> ServiceLevel:
    """The report of `site` (None: all) for [since, until)."""
    p: dict[str, Any] = {
        "site": site,
        "since": since,
        "until": until,
        "tz": settings.timezone,
        "bound_s": settings.report_answer_bound_s,
        "town_s": settings.arrival_promise_town_s,
        "rural_s": settings.arrival_promise_rural_s,
        "max_breaches": 10_000,
        "areas": list(AREA_TYPES),
        **_edges(settings),
    }
    online, episodes = await _one(conn, AVAILABILITY, p)
    hours = await (await conn.execute(BY_HOUR, p)).fetchall()
    return ServiceLevel(
        site=site,
        since=since,
        until=until,
        alarms=await _alarms(conn, p),
        answer=await _answer(conn, p),
        arrival=await _arrival(conn, p),
        night=_night(await _one(conn, NIGHT, p)),
        availability=Availability(online_ratio=online, offline_episodes=episodes),
        by_hour=[
            HourFigures(
                hour=h, alarms=n, answered=a, mean_answer_s=m, within_60s=w60, within_180s=w180
            )
            for h, n, a, m, w60, w180 in hours
        ],
        breaches=[_breach(r) for r in await (await conn.execute(BREACHES, p)).fetchall()],
    )
