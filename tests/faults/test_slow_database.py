"""Fault 6: a slow database (a lock held for 20 s). Memory stays bounded, nothing is dropped,
the broker holds the backlog, and the lag metric and an alert show it."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from devstack.procs import free_port
from simulators.bench.infra import rss_mb
from tests.conftest import Broker
from tests.faults.burst import Burst
from tests.faults.conftest import Services
from tests.helpers import psycopg_rows, scalar, wait_until

pytestmark = pytest.mark.integration
RECEIVE_MAXIMUM = 2_000


def gauge(url: str, name: str) -> float:
    text = httpx.get(url, timeout=5).text
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else -1.0


@pytest.mark.timeout(180)
def test_a_slow_database_is_held_in_the_broker_and_shows(
    services: Services, broker: Broker, database_url: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    services.extra_env = {"LARM_COMMIT_STALL_S": "5", "LARM_ENGINE_TICK_S": "0.2"}
    ingest = services.ingest(
        "slow-db",
        LARM_INGEST_RECEIVE_MAXIMUM=str(RECEIVE_MAXIMUM),
        LARM_INGEST_METRICS_PORT=str(metrics_port),
    )
    services.start("engine")
    services.wait_ingest_connected()
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    rss_before = rss_mb(ingest.pid)
    burst = Burst(20_000)
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(database_url) as conn:
            conn.execute("LOCK TABLE event_ids IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(60)
            conn.rollback()

    holder = threading.Thread(target=hold_lock, daemon=True)
    holder.start()
    assert locked.wait(10)
    started = time.monotonic()
    publisher = burst.publish_in_background(broker.host, broker.port)
    publisher.join(timeout=120)
    assert not publisher.is_alive()  # the broker took all 20,000 while the database stalled
    silent = "SELECT count(*) FROM alerts WHERE kind = 'system.silent' AND resolved_at IS NULL"
    try:
        wait_until(lambda: scalar(database_url, silent) == 1, timeout=15, what="system.silent")
    except AssertionError as exc:  # say what the engine saw
        alerts = psycopg_rows(database_url, "SELECT kind, subject, resolved_at FROM alerts")
        beats = psycopg_rows(
            database_url, "SELECT instance, seen_at, details FROM service_heartbeats"
        )
        raise AssertionError(f"{exc}; alerts {alerts}; heartbeats {beats}") from None
    pending = scalar(
        database_url,
        "SELECT (details->>'pending')::int FROM service_heartbeats WHERE service = 'ingest'",
    )
    assert pending <= RECEIVE_MAXIMUM + 200  # the rest waits in the broker
    wait_until(
        lambda: gauge(metrics, "larm_ingest_oldest_uncommitted_seconds") > 5,
        timeout=10,
        what="the lag metric",
    )
    rss_during = rss_mb(ingest.pid)
    assert rss_during - rss_before < 60, (rss_before, rss_during)
    time.sleep(max(0.0, 20 - (time.monotonic() - started)))
    release.set()
    holder.join(10)
    wait_until(lambda: burst.stored(database_url) >= burst.total, timeout=90, what="caught up")
    burst.verify(database_url)
    wait_until(lambda: scalar(database_url, silent) == 0, timeout=15, what="the alert resolved")
    assert gauge(metrics, "larm_ingest_oldest_uncommitted_seconds") < 5
