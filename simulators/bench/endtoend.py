"""Parts 2, 4 and 5 of the benchmark: larmkedja itself (ingest drain, memory), and the device
sweep at the scale of all of Sweden. The alarm latency is in `simulators/bench/latency.py`."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from alarms import OfflineSweep
from larmkedja.db_connect import client_conninfo
from larmkedja.settings import Settings
from simulators.bench import limits
from simulators.bench.infra import (
    BenchInfra,
    cpu_s,
    larmkedja,
    rss_mb,
    stop,
)


@dataclass
class IngestRun:
    processes: int
    messages: int
    seconds: float
    rss_start_mb: list[float]
    rss_end_mb: list[float]
    cpu_s: list[float]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def ingest_session(host: str, port: int, *, group: str, instance: str, v311: bool = False) -> None:
    """The persistent session a `drain_ingest` process of `group` and `instance` will resume,
    subscribed and left offline so that the backlog queues for it."""
    limits.make_session(
        host, port, f"larmkedja-ingest-{instance}", f"$share/{group}/{limits.TOPIC}", v311=v311
    )


def drain_ingest(
    infra: BenchInfra,
    *,
    group: str,
    instances: list[str],
    database_url: str,
    expected: int,
    protocol: str = "5",
    extra_env: Mapping[str, str] | None = None,
) -> IngestRun:
    """Start ingest process(es) on a preloaded backlog (with `extra_env` added to their
    settings); the sustained rate runs from the first commit to the last (process start-up
    excluded)."""
    procs = [
        larmkedja(
            ["ingest"],
            infra.env(
                database_url,
                LARM_INGEST_SHARE_GROUP=group,
                LARM_INGEST_INSTANCE=name,
                LARM_INGEST_MQTT_PROTOCOL=protocol,
                **(extra_env or {}),
            ),
            infra.root / f"ingest-{name}.log",
        )
        for name in instances
    ]
    try:
        time.sleep(0.3)
        rss_start = [rss_mb(p.pid) for p in procs]
        with psycopg.connect(database_url, autocommit=True) as conn:
            stored = _wait_stored(conn, expected)
            if stored < expected:
                raise RuntimeError(f"ingest stored {stored} of {expected}")
            first_at, first_n, last_at = _commit_span(conn)
        rss_end = [rss_mb(p.pid) for p in procs]
        cpu = [cpu_s(p.pid) for p in procs]
    finally:
        for p in procs:
            stop(p)
    return IngestRun(
        processes=len(procs),
        messages=expected - first_n,
        seconds=last_at - first_at,
        rss_start_mb=rss_start,
        rss_end_mb=rss_end,
        cpu_s=cpu,
    )


# When each of ingest's transactions committed (`track_commit_timestamp`) and how many ids it
# stored: the rate is read from the database's own clock afterwards, so the drain is timed
# exactly without polling a count while it runs (a `count(*)` of the growing table ten times
# a second is a scan that takes CPU from the processes measured).
STORED = "SELECT count(*) FROM event_ids"
COMMITS = """
SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 AS at, count(*)
FROM event_ids GROUP BY 1 ORDER BY 1
"""


def _wait_stored(conn: psycopg.Connection[Any], expected: int) -> int:
    """Wait (15 min at most) until `expected` ids are stored; how many were."""
    deadline = time.monotonic() + 900
    n = 0
    while time.monotonic() < deadline:
        row = conn.execute(STORED).fetchone()
        n = int(row[0]) if row else 0
        if n >= expected:
            break
        time.sleep(1.0)
    return n


def _commit_span(conn: psycopg.Connection[Any]) -> tuple[float, int, float]:
    """The first commit's time and ids, and the last commit's time."""
    commits = conn.execute(COMMITS).fetchall()
    return float(commits[0][0]), int(commits[0][1]), float(commits[-1][0])


def device_sweep(database_url: str, *, devices: int = 250_000, due: int = 2_500) -> dict[str, Any]:
    """The offline sweep with `devices` registered (`due` of them past their deadline), and the
    liveness statement for one batch of 2,000 new heartbeats."""
    sweep = OfflineSweep(settings=Settings(heartbeat_default_s=90.0, unanswered_alert_s=60.0))
    # A session as the engine opens it (`client_conninfo`: without JIT, since 2026-12-08).
    with psycopg.connect(client_conninfo(database_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at)"
            " SELECT 'b-' || lpad(g::text, 6, '0'), 'site-' || (g %% 290), now(), now(),"
            "        now() + make_interval(secs => 270 + g %% 60)"
            " FROM generate_series(1, %s) g",
            (devices,),
        )
        conn.execute("VACUUM ANALYZE devices")
        timings: list[float] = []
        for _ in range(10):
            started = time.perf_counter()
            with conn.transaction():
                fired = sweep.run(conn)
            timings.append((time.perf_counter() - started) * 1000)
        conn.execute(
            "UPDATE devices SET offline_due_at = now() - interval '1 s'"
            " WHERE device_id IN (SELECT device_id FROM devices ORDER BY device_id LIMIT %s)",
            (due,),
        )
        started = time.perf_counter()
        with conn.transaction():
            fired = sweep.run(conn)
        due_ms = (time.perf_counter() - started) * 1000
    return {
        "devices": devices,
        "sweep_idle_ms_median": statistics.median(timings),
        "sweep_idle_ms_max": max(timings),
        "due": due,
        "sweep_with_due_ms": due_ms,
        "fired": fired,
        "core_share_at_2_per_s": statistics.median(timings) / 1000 * 2,
    }
