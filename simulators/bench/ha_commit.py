"""What a commit costs on the HA database at each `synchronous_commit` level, measured on the
same cluster under a background of writes (`larmkedja bench --ha-latency`, before its services
start).

One connection commits one small row at a time, cycling through the levels, so that whatever
else the machine does falls on every level alike: `local` (the primary's own flush, the single
machine's cost), `remote_write` (also written by a replica, not yet flushed there: what the
cluster runs with, devstack/patroni.py) and `on` (also flushed by a replica). Meanwhile another
connection inserts rows at about the heartbeat load's rate, so a commit waits behind a stream of
WAL as it does in the field.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import psycopg

from simulators.bench.latency import Latency

LEVELS = ("local", "remote_write", "on")
SETUP = """
CREATE TABLE IF NOT EXISTS bench_commit_bg (id bigserial, at timestamptz DEFAULT now(), p text);
CREATE TABLE IF NOT EXISTS bench_commit (id bigserial, p text);
"""
BACKGROUND_BATCH = (
    "INSERT INTO bench_commit_bg (p) SELECT repeat('x', 200) FROM generate_series(1, %s)"
)
SET_LEVEL = "SELECT set_config('synchronous_commit', %s, false)"
TIMED_ROW = "INSERT INTO bench_commit (p) VALUES ('a')"
DROP = "DROP TABLE bench_commit_bg, bench_commit"


def commit_costs(
    url: str, *, commits: int = 900, background_rows_s: float = 4000
) -> dict[str, Any]:
    """p50/p99 of `commits` commits, a third at each level, under `background_rows_s` rows/s."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SETUP)
    stopping = threading.Event()
    writer = threading.Thread(target=_background, args=(url, background_rows_s, stopping))
    writer.start()
    times: dict[str, list[float]] = {level: [] for level in LEVELS}
    try:
        time.sleep(1)
        with psycopg.connect(url) as conn:
            for i in range(commits):
                level = LEVELS[i % len(LEVELS)]
                conn.execute(SET_LEVEL, (level,))
                conn.commit()
                conn.execute(TIMED_ROW)
                start = time.perf_counter()
                conn.commit()
                times[level].append((time.perf_counter() - start) * 1000)
                time.sleep(random.uniform(0.005, 0.02))  # spacing, not a secret
    finally:
        stopping.set()
        writer.join()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(DROP)
    return {level: Latency.summary(values) for level, values in times.items()}


def _background(url: str, rows_s: float, stopping: threading.Event) -> None:
    batch = max(1, int(rows_s / 10))
    with psycopg.connect(url) as conn:
        while not stopping.is_set():
            start = time.monotonic()
            conn.execute(BACKGROUND_BATCH, (batch,))
            conn.commit()
            stopping.wait(max(0.0, 0.1 - (time.monotonic() - start)))
