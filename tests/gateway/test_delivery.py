"""The gateway acknowledges a device only after the broker's PUBACK: with the broker away the
device is told to retry (or left to), and its retry is stored once when the broker is back."""

from __future__ import annotations

import socket

import pytest
from dc09_spt.msg.dc09_msg import dc09_msg
from sos_access.client import SOSAccessClient
from sos_access.exceptions import AlarmReceiverConnectionError

from tests.conftest import Broker
from tests.gateway.conftest import GatewayStack
from tests.helpers import wait_until

pytestmark = pytest.mark.integration
PASSWORD = "Abcdefgh1234567"


def test_no_acknowledgement_without_the_broker_and_the_retry_is_stored_once(
    gw: GatewayStack, broker: Broker
) -> None:
    gw.add("sos-access", "TX1", "deliver-1", secret=PASSWORD)
    gw.add("sia-dc09", "8888", "deliver-2", plain=True)
    client = SOSAccessClient(
        transmitter_code="TX1", transmitter_type="SV300", authentication=PASSWORD,
        receiver_id="larmkedja", receiver_address=(gw.host, gw.port("sos-access")),
        use_single_receiver=True,
    )  # fmt: skip
    block = dc09_msg("8888").dc09block(3, "SIA-DCS", "#8888|NMA1]").encode()
    broker.server.stop()
    wait_until(lambda: not gw.running.gateway.publisher.connected, timeout=10, what="disconnect")

    # SOS Access: status 5 ("not treated"), three times: the client gives up on this receiver.
    with pytest.raises(AlarmReceiverConnectionError):
        client.send_alarm(event_code="MA", reference="while-down")
    # DC-09: no answer at all; the panel will send the block again.
    with socket.create_connection((gw.host, gw.port("sia-dc09")), timeout=5) as s:
        s.sendall(block)
        s.settimeout(gw.settings.gateway_publish_timeout_s + 2)
        with pytest.raises(TimeoutError):
            s.recv(1024)
    assert gw.result_count("sos-access", "busy") == 3
    assert gw.result_count("sia-dc09", "busy") == 1

    broker.server.start()
    wait_until(lambda: gw.running.gateway.publisher.connected, timeout=15, what="reconnect")
    assert client.send_alarm(event_code="MA", reference="while-down").status == 0
    with socket.create_connection((gw.host, gw.port("sia-dc09")), timeout=5) as s:
        s.sendall(block)
        assert b'"ACK"' in s.recv(1024)
    gw.wait_events("deliver-1", 1)
    gw.wait_events("deliver-2", 1)
    wait_until(lambda: gw.open_alarms("deliver-1") == 1, timeout=10, what="one queue entry")
    assert gw.events("deliver-1") == 1
    assert gw.events("deliver-2") == 1


def test_nobody_subscribed_is_not_delivered(database_url: str, broker: Broker) -> None:
    """Before ingest subscribes (a fresh broker, or right after a restart: Mosquitto does not
    restore shared subscriptions) the broker answers PUBACK 0x10, "no matching subscribers":
    the gateway must not acknowledge the device then."""
    from prometheus_client import CollectorRegistry

    from gateway import admin
    from gateway.metrics import GatewayMetrics
    from tests.gateway.conftest import _GatewayThread, gateway_settings
    from tests.helpers import running_ingest, scalar

    settings = gateway_settings(database_url, broker)
    admin.add(settings, protocol="sos-access", sender_id="TX2", site="gw", device_id="nobody-1",
              secret=PASSWORD)  # fmt: skip
    with _GatewayThread(settings, GatewayMetrics(registry=CollectorRegistry())) as running:
        address = (settings.gateway_host, running.ports["sos-access"])
        client = SOSAccessClient(
            transmitter_code="TX2", transmitter_type="SV300", authentication=PASSWORD,
            receiver_id="larmkedja", receiver_address=address, use_single_receiver=True,
        )  # fmt: skip
        with pytest.raises(AlarmReceiverConnectionError):  # status 5, three times
            client.send_alarm(event_code="MA", reference="nobody-listens")
        with running_ingest(settings):
            assert client.send_alarm(event_code="MA", reference="nobody-listens").status == 0
            sql = "SELECT count(*) FROM events WHERE device_id = 'nobody-1'"
            wait_until(lambda: scalar(database_url, sql) == 1, timeout=10, what="stored once")
