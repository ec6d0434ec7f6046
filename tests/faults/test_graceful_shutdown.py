"""SIGTERM in the middle of a burst: stop taking messages, commit, acknowledge, exit in 10 s."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

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
