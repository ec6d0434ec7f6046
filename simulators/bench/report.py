"""Part 7 of the benchmark: the monthly service-level report over a large centre's month.

A month (November 2026) of generated data, in SQL: 250,000 devices (a tenth of them linked to
a person, half of those rural), 60,000 alarms (2,000 a day; every twentieth escalated and the
patrol at the door), 20,000 offline episodes, 2,000 night-supervision plans checked twice a
night. Then the report (`alarms.service_level`, the function behind the route, the CSV and
`larmkedja report`) is timed for all sites and for one, three times each. Target: 2 s.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from alarms import service_level
from larmkedja.db_connect import client_conninfo
from larmkedja.settings import Settings

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = datetime(2026, 12, 1, tzinfo=UTC)
DEVICES, ALARMS, OFFLINE, PLANS = 250_000, 60_000, 20_000, 2_000
MONTH_S = (UNTIL - SINCE).total_seconds()

GENERATE = [
    """
    INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at)
    SELECT 'm-' || lpad(g::text, 6, '0'), 'site-' || (g %% 290),
           %(since)s::timestamptz - interval '60 days', %(until)s, %(until)s
    FROM generate_series(1, %(devices)s) g
    """,
    """
    INSERT INTO persons (person_ref, name, address, area_type, updated_by)
    SELECT 'P-' || g, 'Person ' || g, 'Gatan ' || g,
           CASE WHEN g %% 2 = 0 THEN 'rural' ELSE 'town' END, 'bench'
    FROM generate_series(1, %(devices)s / 10) g
    """,
    """
    INSERT INTO person_devices (device_id, person_ref)
    SELECT 'm-' || lpad((g * 10)::text, 6, '0'), 'P-' || g
    FROM generate_series(1, %(devices)s / 10) g
    """,
    """
    INSERT INTO alarms (site, device_id, kind, priority, source, state, raised_at,
                        last_event_at, answered_at, answered_by, resolved_at, resolved_by,
                        outcome)
    SELECT 'site-' || (d %% 290), 'm-' || lpad(d::text, 6, '0'),
           (ARRAY['alarm.button', 'alarm.fall', 'alarm.button', 'device.offline'])[1 + g %% 4],
           CASE WHEN g %% 4 = 3 THEN 4 ELSE 1 END, 'device', 'resolved', r, r,
           r + make_interval(secs => 5 + (g * 37) %% 400), 'op',
           r + make_interval(secs => 600), 'op', 'help_by_phone'
    FROM (SELECT g, 1 + (g * 7919) %% %(devices)s AS d,
                 %(since)s::timestamptz + make_interval(secs => g * %(step_s)s) AS r
          FROM generate_series(0, %(alarms)s - 1) g) x
    """,
    """
    INSERT INTO escalations (site, device_id, alarm_id, reason, state, created_at, created_by,
                             ack_deadline, arrived_at)
    SELECT site, device_id, alarm_id, 'bench', 'arrived', answered_at, 'op',
           answered_at + interval '10 min',
           answered_at + make_interval(secs => 600 + (extract(epoch FROM raised_at)::bigint
                                                       %% 4000))
    FROM alarms WHERE extract(epoch FROM raised_at)::bigint %% 20 = 0
    """,
    """
    INSERT INTO alerts (site, kind, severity, subject, raised_at, resolved_at)
    SELECT 'site-' || (g %% 290), 'device.offline', 'warning', 'm-' || lpad(g::text, 6, '0'),
           r, r + make_interval(secs => 300 + g %% 7200)
    FROM (SELECT g, %(since)s::timestamptz + make_interval(secs => g * %(offline_step_s)s) AS r
          FROM generate_series(1, %(offline)s) g) x
    """,
    """
    INSERT INTO supervision_plans (plan_id, device_id, site, checks, window_minutes,
                                   updated_by)
    SELECT 'plan-' || g, 'cam-' || g, 'site-' || (g %% 290), ARRAY['22:00', '02:00'], 15,
           'bench'
    FROM generate_series(1, %(plans)s) g
    """,
    """
    INSERT INTO supervision_checks (plan_id, night, local_time, site, device_id, scheduled_for,
                                    window_end, state)
    SELECT p.plan_id, n::date, t, p.site, p.device_id, n + t::interval,
           n + t::interval + interval '15 min',
           (ARRAY['done_ok', 'done_ok', 'done_ok', 'rechecked_ok', 'missed'])[1 + (g %% 5)]
    FROM supervision_plans p,
         generate_series(%(since)s::timestamptz, %(until)s::timestamptz - interval '1 day',
                         interval '1 day') n,
         unnest(ARRAY['22:00', '26:00']) t,
         LATERAL (SELECT abs(hashtext(p.plan_id || n::text || t)) AS g) h
    """,
    "ANALYZE",
]


def month_report(database_url: str) -> dict[str, Any]:
    """Generate the month, then time the report of all sites and of one."""
    params = {
        "since": SINCE,
        "until": UNTIL,
        "devices": DEVICES,
        "alarms": ALARMS,
        "offline": OFFLINE,
        "plans": PLANS,
        "step_s": MONTH_S / ALARMS,
        "offline_step_s": MONTH_S / OFFLINE,
    }
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        for sql in GENERATE:
            conn.execute(sql, params)
    generated_s = time.perf_counter() - started
    timings = asyncio.run(_time(database_url))
    return {
        "devices": DEVICES,
        "alarms": ALARMS,
        "generated_s": generated_s,
        "all_sites_s": statistics.median(timings["all"]),
        "one_site_s": statistics.median(timings["one"]),
        "alarms_counted": timings["counted"],
    }


async def _time(database_url: str) -> dict[str, Any]:
    settings = Settings(database_url=database_url)
    out: dict[str, Any] = {"all": [], "one": [], "counted": 0}
    # A session as the API's pool opens it (`client_conninfo`: without JIT, since 2026-12-08).
    async with await psycopg.AsyncConnection.connect(client_conninfo(database_url)) as conn:
        for _ in range(3):
            for key, site in (("all", None), ("one", "site-7")):
                started = time.perf_counter()
                report = await service_level(
                    conn, settings=settings, site=site, since=SINCE, until=UNTIL
                )
                out[key].append(time.perf_counter() - started)
                if site is None:
                    out["counted"] = report.alarms.count
    return out
