"""Two receiving paths: two Mosquitto brokers that share nothing but their password and ACL
files (docs/scaling.md). The gateway sends every event to both and is answered by the first;
a device is still only itself on either; revoking it works on both without a restart."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from alarms.devices.credentials_mosquitto import BrokerAuth
from devstack.mosquitto import Mosquitto
from devstack.procs import free_port
from gateway.publish_paho import Paths, Publisher, publisher_client
from larmkedja.events import Kind
from larmkedja.settings import Settings
from tests.helpers import make_event, wait_until, wait_until_async
from tests.integration.conftest import SecureBroker
from tests.integration.test_security_mqtt import Peer

pytestmark = pytest.mark.integration


@dataclass
class TwoPaths:
    auth: BrokerAuth
    brokers: list[SecureBroker]
    services: dict[str, str]


@pytest.fixture
def two_paths(state_dir: Path) -> Iterator[TwoPaths]:
    root = state_dir / f"mq-paths-{uuid.uuid4().hex[:6]}"
    dirs = [root / "a", root / "b"]
    auth = BrokerAuth(
        directory=root / "auth",
        pid_file=dirs[0] / "mosquitto.pid",
        more_pid_files=[dirs[1] / "mosquitto.pid"],
    )
    services = {
        "svc-ingest-1": secrets.token_urlsafe(12),
        "svc-gateway-1": secrets.token_urlsafe(12),
    }
    auth.ensure_services(services)
    servers = [
        Mosquitto(
            state_dir=d, port=free_port(), password_file=auth.password_file, acl_file=auth.acl_file
        )
        for d in dirs
    ]
    for server in servers:
        server.start()
    try:
        yield TwoPaths(auth, [SecureBroker(s, auth, services) for s in servers], services)
    finally:
        for server in servers:
            server.stop()


def test_a_device_is_only_itself_on_either_path(two_paths: TwoPaths) -> None:
    one = two_paths.auth.provision(site="solna", device_id="p-1")
    two = two_paths.auth.provision(site="solna", device_id="p-2")
    for broker in two_paths.brokers:
        device = Peer(broker, one.username, one.password)
        try:
            assert device.connected.is_set()
            own = make_event("p-1", Kind.ALARM_BUTTON)
            assert not device.publish(one.topic, own.to_json()).is_failure
            forged = make_event("p-2", Kind.ALARM_BUTTON)
            refused = device.publish(two.topic, forged.to_json())
            assert refused.is_failure and refused.getName() == "Not authorized"
        finally:
            device.close()
    assert two_paths.auth.revoke(device_id="p-1")
    time.sleep(0.3)  # both brokers re-read the files on SIGHUP
    for broker in two_paths.brokers:
        again = Peer(broker, one.username, one.password)
        try:
            assert again.refused is not None, "a revoked device still gets in on one path"
        finally:
            again.close()


def _publisher(port: int, password: str) -> Publisher:
    settings = Settings(mqtt_username="svc-gateway-1", mqtt_password=password)
    publisher = Publisher(
        client=publisher_client(settings=settings, client_id="svc-gateway-1"), timeout_s=3.0
    )
    publisher.start(host="127.0.0.1", port=port, keepalive_s=5)
    return publisher


async def test_the_gateway_sends_to_both_and_a_lost_path_delays_nothing(
    two_paths: TwoPaths,
) -> None:
    a, b = two_paths.brokers
    readers = [
        Peer(broker, "svc-ingest-1", two_paths.services["svc-ingest-1"])
        for broker in two_paths.brokers
    ]
    for reader in readers:
        assert not reader.subscribe("larm/v1/+/+/events").is_failure
    publishers = [
        _publisher(broker.server.port, two_paths.services["svc-gateway-1"])
        for broker in two_paths.brokers
    ]
    paths = Paths(publishers)
    try:
        await wait_until_async(
            lambda: all(p.connected for p in publishers), within=5, what="both paths"
        )
        event = make_event("g-1", Kind.ALARM_FALL)
        assert await paths.publish(event.topic("solna"), event.to_json())
        await wait_until_async(
            lambda: all(len(r.messages) == 1 for r in readers), within=3, what="both"
        )
        a.server.kill()  # one path is gone: kill -9 of its broker
        started = time.monotonic()
        second = make_event("g-1", Kind.ALARM_BUTTON)
        assert await paths.publish(second.topic("solna"), second.to_json())
        assert time.monotonic() - started < 1.0, "the lost path held the device up"
        await wait_until_async(
            lambda: len(readers[1].messages) == 2, within=3, what="the other path"
        )
        b.server.kill()  # both gone: not acknowledged, the device retries
        await asyncio.sleep(0.2)
        third = make_event("g-1", Kind.ALARM_BUTTON)
        assert not await paths.publish(third.topic("solna"), third.to_json())
    finally:
        paths.stop()
        for reader in readers:
            reader.close()


def test_the_engine_publishes_on_the_other_path_when_one_broker_hangs(
    database_url: str, state_dir: Path
) -> None:
    """A hung broker (SIGSTOP: TCP stays up, nothing answers) is noticed by the missing PUBACK
    and by the MQTT keepalive; alerts go out on the other path meanwhile."""
    from devstack.procs import pause_pid, read_pid
    from tests.helpers import running_engine, settings_for

    root = state_dir / f"mq-hang-{uuid.uuid4().hex[:6]}"
    brokers = [Mosquitto(state_dir=root / n, port=free_port()) for n in ("a", "b")]
    for broker in brokers:
        broker.start()
    paths = [f"127.0.0.1:{b.port}" for b in brokers]
    settings = settings_for(
        database_url, "127.0.0.1", brokers[0].port, mqtt_paths=paths, mqtt_keepalive_s=5
    )
    reader = Peer(SecureBroker(brokers[1], BrokerAuth(directory=root / "x"), {}), None, None)
    assert not reader.subscribe("larm/v1/+/alerts").is_failure
    hung = read_pid(brokers[0].pid_file)
    assert hung is not None
    try:
        with running_engine(settings), psycopg.connect(database_url, autocommit=True) as conn:
            pause_pid(hung)
            started = time.monotonic()
            conn.execute(
                "INSERT INTO outbox (topic, payload) VALUES ('larm/v1/solna/alerts', %s)",
                (Jsonb({"alert_id": "a-1", "kind": "test"}),),
            )
            wait_until(lambda: len(reader.messages) == 1, timeout=20, what="the other path")
            assert time.monotonic() - started < 12  # PUBACK wait (5 s) or keepalive (7.5 s)
    finally:
        pause_pid(hung, resume=True)
        reader.close()
        for broker in brokers:
            broker.stop()
