"""Fault 1: SIGKILL the ingest process in the middle of a 20,000-event burst; restart it."""

from __future__ import annotations

import pytest

from tests.conftest import Broker
from tests.faults.burst import Burst
from tests.faults.conftest import Services, kill
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


def test_sigkill_in_the_middle_of_a_burst_loses_and_doubles_nothing(
    services: Services, broker: Broker, database_url: str
) -> None:
    burst = Burst(20_000)
    first = services.ingest("crash-test")
    services.wait_ingest_connected()
    publisher = burst.publish_in_background(broker.host, broker.port)
    wait_until(lambda: burst.stored(database_url) >= 2_000, timeout=30, what="part stored")
    kill(first)
    assert burst.stored(database_url) < burst.total, "the kill came too late to prove anything"
    services.ingest("crash-test")  # the same client id: the same persistent session
    publisher.join(timeout=120)
    assert not publisher.is_alive()
    wait_until(lambda: burst.stored(database_url) >= burst.total, timeout=90, what="all stored")
    burst.verify(database_url)
