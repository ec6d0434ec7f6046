"""Device identity on a real broker: each device may publish only as itself, to its own topic;
anonymous access is off; revoking works without a restart."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from alarms.devices.credentials_mosquitto import BrokerAuth
from devstack.mosquitto import Mosquitto
from devstack.procs import free_port
from devstack.tls import local_ca
from gateway.publish_paho import Publisher, publisher_client
from larmkedja.events import Kind
from larmkedja.mqtt_paho import connect_properties, make_client
from larmkedja.settings import Settings
from tests.helpers import make_event, wait_until, wait_until_async
from tests.integration.conftest import SecureBroker

pytestmark = pytest.mark.integration


class Peer:
    """A client that records what it receives and how its publishes were answered."""

    def __init__(
        self,
        broker: SecureBroker,
        username: str | None,
        password: str | None,
        *,
        client_id: str | None = None,
        clean_start: bool = True,
    ) -> None:
        self.messages: list[MQTTMessage] = []
        self.acks: dict[int, Any] = {}
        self.connected = threading.Event()
        self.refused: Any = None
        self.granted: list[Any] = []
        self.client = Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"peer-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.session_present: bool | None = None
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.messages.append(m)
        self.client.on_publish = lambda c, u, mid, reason, props: self.acks.__setitem__(mid, reason)
        self.client.on_subscribe = lambda c, u, mid, reasons, props: self.granted.extend(reasons)
        props = connect_properties(session_expiry_s=0 if clean_start else 3600)
        self.client.connect(
            "127.0.0.1", broker.server.port, clean_start=clean_start, properties=props
        )
        self.client.loop_start()
        wait_until(lambda: self.connected.is_set() or self.refused is not None, timeout=5)

    def _on_connect(self, client: Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.refused = reason
        else:
            self.session_present = bool(flags.session_present)
            self.connected.set()

    def publish(self, topic: str, payload: bytes) -> Any:
        info = self.client.publish(topic, payload, qos=1)
        wait_until(lambda: info.mid in self.acks, timeout=5, what="a PUBACK")
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> Any:
        self.granted.clear()
        self.client.subscribe(topic, options=SubscribeOptions(qos=1))
        wait_until(lambda: bool(self.granted), timeout=5, what="a SUBACK")
        return self.granted[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_device_publishes_only_as_itself_and_only_to_its_own_topic(
    secure_broker: SecureBroker,
) -> None:
    one = secure_broker.auth.provision(site="solna", device_id="d-1")
    two = secure_broker.auth.provision(site="solna", device_id="d-2")
    ingest = Peer(secure_broker, "svc-ingest-1", secure_broker.services["svc-ingest-1"])
    device = Peer(secure_broker, one.username, one.password)
    try:
        assert ingest.connected.is_set() and device.connected.is_set()
        granted = ingest.subscribe("$share/ingest/larm/v1/+/+/events")
        assert not granted.is_failure, granted
        own = make_event("d-1", Kind.ALARM_BUTTON)
        assert not device.publish(one.topic, own.to_json()).is_failure
        wait_until(lambda: len(ingest.messages) == 1, timeout=3, what="its own event")
        forged = make_event("d-2", Kind.ALARM_BUTTON)
        refused = device.publish(two.topic, forged.to_json())  # as another device
        assert refused.is_failure and refused.getName() == "Not authorized"
        assert device.publish("larm/v1/kista/d-1/events", own.to_json()).is_failure  # other site
        assert device.publish("larm/v1/solna/alerts", b"{}").is_failure  # a system topic
        time.sleep(0.3)
        assert [m.topic for m in ingest.messages] == [one.topic]
    finally:
        device.close()
        ingest.close()


def test_a_device_cannot_listen_to_other_devices(secure_broker: SecureBroker) -> None:
    one = secure_broker.auth.provision(site="solna", device_id="d-5")
    two = secure_broker.auth.provision(site="solna", device_id="d-6")
    listener = Peer(secure_broker, one.username, one.password)
    talker = Peer(secure_broker, two.username, two.password)
    try:
        # Mosquitto 2.0 answers a subscription outside the ACL by closing the connection (or
        # by delivering nothing): either way the device hears nothing of the others.
        listener.client.subscribe("larm/v1/#", options=SubscribeOptions(qos=1))
        time.sleep(0.5)
        event = make_event("d-6", Kind.HEARTBEAT)
        assert not talker.publish(two.topic, event.to_json()).is_failure
        time.sleep(0.5)
        assert listener.messages == []
    finally:
        listener.close()
        talker.close()


def test_anonymous_and_wrong_passwords_are_refused(secure_broker: SecureBroker) -> None:
    secure_broker.auth.provision(site="solna", device_id="d-3")
    anonymous = Peer(secure_broker, None, None)
    wrong = Peer(secure_broker, "d-3", "not-the-password")
    try:
        assert anonymous.refused is not None and not anonymous.connected.is_set()
        assert wrong.refused is not None and not wrong.connected.is_set()
    finally:
        anonymous.close()
        wrong.close()


def test_revoking_a_device_works_without_restarting_the_broker(
    secure_broker: SecureBroker,
) -> None:
    creds = secure_broker.auth.provision(site="solna", device_id="d-4")
    pid_before = secure_broker.server.pid_file.read_text()
    first = Peer(secure_broker, creds.username, creds.password)
    assert first.connected.is_set()
    first.close()
    assert secure_broker.auth.revoke(device_id="d-4")
    time.sleep(0.3)  # the broker re-reads its files on SIGHUP
    again = Peer(secure_broker, creds.username, creds.password)
    try:
        assert again.refused is not None
        assert secure_broker.server.pid_file.read_text() == pid_before  # the same broker
    finally:
        again.close()


@dataclass
class TlsBroker:
    settings: Settings  # a device's: its account, the TLS port, the local CA
    topic: str  # what the ACL lets it publish to
    plain: SecureBroker  # the same broker's plain listener, with ingest's account


@pytest.fixture
def tls_broker(state_dir: Path) -> Iterator[TlsBroker]:
    """A broker with a TLS listener signed by a local CA, and one device's account on it."""
    root = state_dir / f"mq-tls-{uuid.uuid4().hex[:6]}"
    auth = BrokerAuth(directory=root / "auth", pid_file=root / "mosquitto.pid")
    services = {"svc-ingest-1": secrets.token_urlsafe(12)}
    auth.ensure_services(services)
    creds = auth.provision(site="solna", device_id="d-tls")
    tls = local_ca(root / "tls")
    server = Mosquitto(
        state_dir=root,
        port=free_port(),
        password_file=auth.password_file,
        acl_file=auth.acl_file,
        tls_port=free_port(),
        tls=tls,
    )
    server.start()
    try:
        assert server.tls_port is not None
        settings = Settings(
            mqtt_host="127.0.0.1",
            mqtt_port=server.tls_port,
            mqtt_tls_ca=str(tls.ca),
            mqtt_username=creds.username,
            mqtt_password=creds.password,
        )
        yield TlsBroker(settings, creds.topic, SecureBroker(server, auth, services))
    finally:
        server.stop()


def test_a_tls_listener_with_a_local_ca_is_one_setting_away(tls_broker: TlsBroker) -> None:
    settings = tls_broker.settings
    client = make_client(settings=settings, client_id="tls-device")
    client.connect("127.0.0.1", settings.mqtt_port)
    client.loop_start()
    info = client.publish(tls_broker.topic, make_event("d-tls", Kind.HEARTBEAT).to_json(), qos=1)
    info.wait_for_publish(timeout=5)
    assert info.is_published()
    client.disconnect()
    client.loop_stop()


async def test_the_gateways_publish_path_over_tls(tls_broker: TlsBroker) -> None:
    """The gateway's publisher writes a pass's PUBLISHes straight to the socket and reads the
    PUBACKs itself (`FastPublisher`): over TLS too, 300 at once, each acknowledged and each
    delivered (a subscriber, as ingest: the broker says "no matching subscribers" otherwise)."""
    settings = tls_broker.settings
    reader = Peer(tls_broker.plain, "svc-ingest-1", tls_broker.plain.services["svc-ingest-1"])
    assert not reader.subscribe("larm/v1/+/+/events").is_failure
    publisher = Publisher(
        client=publisher_client(settings=settings, client_id="tls-device"), timeout_s=5.0
    )
    publisher.start(host="127.0.0.1", port=settings.mqtt_port, keepalive_s=5)
    try:
        await wait_until_async(lambda: publisher.connected, within=5, what="connected over TLS")
        events = [make_event("d-tls", Kind.HEARTBEAT).to_json() for _ in range(300)]
        results = await asyncio.gather(*(publisher.publish(tls_broker.topic, e) for e in events))
        assert all(results)
        await wait_until_async(lambda: len(reader.messages) == 300, within=5, what="all read")
        assert sorted(m.payload for m in reader.messages) == sorted(events)
    finally:
        publisher.stop()
        reader.close()


@pytest.mark.parametrize("service_id", ["larmkedja-ingest-1", "svc-ingest-1", "larmkedja-engine-1"])
def test_a_device_cannot_take_over_a_services_session(
    secure_broker: SecureBroker, service_id: str
) -> None:
    """Mosquitto keys sessions by client id: a device that connected with ingest's id and
    `clean_start=False` inherited its subscription and its backlog (every device's events), or
    wiped it. With the account as the session, it gets only its own."""
    one = secure_broker.auth.provision(site="solna", device_id="d-7")
    two = secure_broker.auth.provision(site="solna", device_id="d-8")
    password = secure_broker.services["svc-ingest-1"]
    ingest = Peer(secure_broker, "svc-ingest-1", password, client_id=service_id, clean_start=False)
    assert not ingest.subscribe("larm/v1/+/+/events").is_failure
    ingest.close()  # ingest is down: its session keeps what devices send meanwhile
    sender = Peer(secure_broker, two.username, two.password)
    thief = None
    try:
        assert not sender.publish(
            two.topic, make_event("d-8", Kind.ALARM_BUTTON).to_json()
        ).is_failure
        thief = Peer(
            secure_broker, one.username, one.password, client_id=service_id, clean_start=False
        )
        assert thief.connected.is_set()
        assert thief.session_present is False, "the device was handed ingest's session"
        time.sleep(0.5)
        assert thief.messages == [], "the device received another device's event"
        thief.close()
        back = Peer(
            secure_broker, "svc-ingest-1", password, client_id=service_id, clean_start=False
        )
        try:
            assert back.session_present is True
            wait_until(lambda: len(back.messages) == 1, timeout=5, what="ingest's backlog")
        finally:
            back.close()
    finally:
        sender.close()


def test_a_packet_over_the_limit_is_refused_before_it_is_buffered(
    secure_broker: SecureBroker,
) -> None:
    """Contract §1 allows 8 KiB; the broker refuses a 1 MiB publish and drops its sender, and
    another device's alarm still goes through."""
    big = secure_broker.auth.provision(site="solna", device_id="d-big")
    other = secure_broker.auth.provision(site="solna", device_id="d-ok")
    ingest = Peer(secure_broker, "svc-ingest-1", secure_broker.services["svc-ingest-1"])
    hog = Peer(secure_broker, big.username, big.password)
    fine = Peer(secure_broker, other.username, other.password)
    try:
        assert not ingest.subscribe("larm/v1/+/+/events").is_failure
        gone = threading.Event()
        hog.client.on_disconnect = lambda *a: gone.set()
        hog.client.publish(big.topic, b"x" * (1024 * 1024), qos=1)
        assert gone.wait(5), "the broker kept a client that sent 1 MiB"
        alarm = make_event("d-ok", Kind.ALARM_BUTTON)
        assert not fine.publish(other.topic, alarm.to_json()).is_failure
        wait_until(lambda: len(ingest.messages) == 1, timeout=5, what="the other alarm")
        assert ingest.messages[0].topic == other.topic
    finally:
        for peer in (fine, hog, ingest):
            peer.close()
