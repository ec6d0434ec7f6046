"""Fault 2: restart Mosquitto in the middle of a burst (persistence on)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Broker
from tests.faults.burst import Burst
from tests.faults.conftest import Services, kill
from tests.helpers import scalar, wait_until

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


def test_two_partitioned_ingest_processes_lose_and_double_nothing_across_a_broker_restart(
    services: Services, broker: Broker, database_url: str
) -> None:
    """The way to run several ingest processes that survives Mosquitto 2.0's restart: each has
    a plain subscription in its own session and stores its partition of the devices."""
    burst = Burst(20_000)
    for k in ("0", "1"):
        services.ingest(f"p{k}", LARM_INGEST_PARTITIONS="2", LARM_INGEST_PARTITION=k)
    services.wait_ingest_connected(count=2)
    nobody_got: list[int] = []  # a device that never sends again, as MQTT 3.1.1 devices do
    publisher = burst.publish_in_background(broker.host, broker.port, careless=nobody_got)
    wait_until(lambda: burst.stored(database_url) >= 3_000, timeout=30, what="part stored")
    broker.server.stop()
    assert burst.stored(database_url) < burst.total, "the restart came too late"
    time.sleep(1)
    broker.server.start()
    publisher.join(timeout=120)
    assert not publisher.is_alive(), "the publisher did not get every PUBACK"
    assert nobody_got == [0], "the restarted broker had a subscriber for every publish"
    wait_until(lambda: burst.stored(database_url) >= burst.total, timeout=90, what="all stored")
    time.sleep(0.5)
    burst.verify(database_url)
    per_instance = scalar(
        database_url,
        "SELECT count(DISTINCT details->>'partition') FROM service_heartbeats"
        " WHERE service = 'ingest'",
    )
    assert per_instance == 2


def test_a_partitions_events_wait_in_its_session_while_its_process_is_down(
    services: Services, broker: Broker, database_url: str
) -> None:
    burst = Burst(6_000)
    first = services.ingest("p0", LARM_INGEST_PARTITIONS="2", LARM_INGEST_PARTITION="0")
    services.ingest("p1", LARM_INGEST_PARTITIONS="2", LARM_INGEST_PARTITION="1")
    services.wait_ingest_connected(count=2)
    kill(first)  # partition 0 is down for the whole burst
    publisher = burst.publish_in_background(broker.host, broker.port)
    publisher.join(timeout=120)
    assert not publisher.is_alive()
    time.sleep(2)
    stored_meanwhile = burst.stored(database_url)
    assert 0 < stored_meanwhile < burst.total, "only partition 1's devices are stored"
    services.ingest("p0", LARM_INGEST_PARTITIONS="2", LARM_INGEST_PARTITION="0")
    wait_until(lambda: burst.stored(database_url) >= burst.total, timeout=90, what="all stored")
    time.sleep(0.5)
    burst.verify(database_url)
