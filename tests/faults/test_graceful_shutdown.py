"""SIGTERM in the middle of a burst: stop taking messages, commit, acknowledge, exit in 10 s."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest

from devstack.procs import free_port
from tests.conftest import Broker
from tests.faults.burst import Burst
from tests.faults.conftest import Services
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


def test_sigterm_commits_what_it_holds_and_exits_within_10_s(
    services: Services, broker: Broker, database_url: str
) -> None:
    burst = Burst(20_000)
    ingest = services.ingest("graceful")
    services.wait_ingest_connected()
    publisher = burst.publish_in_background(broker.host, broker.port)
    wait_until(lambda: burst.stored(database_url) >= 3_000, timeout=30, what="part stored")
    ingest.send_signal(signal.SIGTERM)
    stopped_at = time.monotonic()
    try:
        code = ingest.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("ingest did not exit within 10 s of SIGTERM")
    assert code == 0 and time.monotonic() - stopped_at < 10
    services.ingest("graceful")
    publisher.join(timeout=120)
    wait_until(lambda: burst.stored(database_url) >= burst.total, timeout=90, what="all stored")
    burst.verify(database_url)


def duplicates(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("larm_ingest_events_duplicate_total "):
            return float(line.split()[1])
    raise AssertionError("no duplicate counter")


def test_a_clean_stop_under_load_leaves_nothing_to_deliver_again(
    services: Services, broker: Broker, database_url: str
) -> None:
    """Every message committed before the stop was acknowledged, and the broker read those
    acknowledgements: the next process is sent nothing that is already stored. (Closing the
    socket with unread input resets the connection, and a busy Mosquitto drops the PUBACKs it
    had not read yet; tests/unit/test_mqtt_fast_paho.py shows the close is a FIN.)"""
    burst = Burst(30_000)
    ingest = services.ingest("clean")
    services.wait_ingest_connected()
    ingest.send_signal(signal.SIGTERM)  # its session now queues the whole burst: a backlog
    assert ingest.wait(timeout=10) == 0
    publisher = burst.publish_in_background(broker.host, broker.port)
    publisher.join(timeout=120)
    ingest = services.ingest("clean")  # reading as fast as it commits, input always waiting
    wait_until(lambda: burst.stored(database_url) >= 5_000, timeout=60, what="part stored")
    ingest.send_signal(signal.SIGTERM)
    assert ingest.wait(timeout=10) == 0
    assert burst.stored(database_url) < burst.total, "the stop came too late"
    port = free_port()
    services.ingest("clean", LARM_INGEST_METRICS_PORT=str(port))
    wait_until(lambda: burst.stored(database_url) >= burst.total, timeout=90, what="all stored")
    burst.verify(database_url)
    assert duplicates(port) == 0
