"""Fault 2: restart Mosquitto in the middle of a burst (persistence on)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Broker
from tests.faults.burst import Burst
from tests.faults.conftest import Services
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("group", ["", "ingest"], ids=["plain", "shared"])
def test_a_broker_restart_in_the_middle_of_a_burst_loses_and_doubles_nothing(
    services: Services, broker: Broker, database_url: str, group: str
) -> None:
    """Plain: the persistent session and its subscription survive the restart. Shared:
    Mosquitto does not restore a shared subscription, so until ingest subscribes again the
    broker answers "no matching subscribers" (0x10) and the publisher (a careful device, or
    the gateway) sends again; nothing is lost either way."""
    burst = Burst(20_000)
    services.extra_env = {"LARM_INGEST_SHARE_GROUP": group}
    services.ingest("broker-restart")
    services.wait_ingest_connected()
    publisher = burst.publish_in_background(broker.host, broker.port)
    wait_until(lambda: burst.stored(database_url) >= 3_000, timeout=30, what="part stored")
    broker.server.stop()  # a clean stop writes the persistence file
    assert burst.stored(database_url) < burst.total, "the restart came too late"
    time.sleep(1)
    broker.server.start()  # ingest and the publisher reconnect and resume their sessions
    publisher.join(timeout=120)
    assert not publisher.is_alive(), "the publisher did not get every PUBACK"
    wait_until(lambda: burst.stored(database_url) >= burst.total, timeout=90, what="all stored")
    time.sleep(0.5)
    burst.verify(database_url)
