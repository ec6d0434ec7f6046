"""The services' paho client: what it relies on in paho, and that it makes no garbage."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from paho.mqtt.client import Client, MQTTMessage

from larmkedja.mqtt_paho import TunedClient, bare_client, make_client
from larmkedja.settings import Settings

TOPIC = b"larm/v1/solna/d-000123/events"


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def deliver(client: Client, n: int) -> None:
    for mid in range(1, n + 1):
        message = MQTTMessage(mid=mid, topic=TOPIC)
        message.payload, message.qos = b"{}", 1
        client._handle_on_message(message)


def test_a_received_message_leaves_no_cyclic_garbage(no_gc: None) -> None:
    client = make_client(settings=Settings(), client_id="t")
    assert isinstance(client, TunedClient)
    got: list[bytes | bytearray] = []
    client.on_message = lambda c, u, m: got.append(m.payload)
    deliver(client, 1000)
    assert len(got) == 1000
    assert gc.collect() == 0


def test_stock_paho_does_leave_garbage_so_the_test_above_can_fail(no_gc: None) -> None:
    client = bare_client(client_id="t")
    client.on_message = lambda c, u, m: None
    deliver(client, 100)
    assert gc.collect() >= 100  # if paho fixes this, TunedClient can go


def test_per_topic_callbacks_still_work() -> None:
    client = make_client(settings=Settings(), client_id="t")
    plain: list[str] = []
    filtered: list[str] = []
    client.on_message = lambda c, u, m: plain.append(m.topic)
    client.message_callback_add("larm/v1/+/+/events", lambda c, u, m: filtered.append(m.topic))
    deliver(client, 1)
    assert filtered == [TOPIC.decode()] and plain == []
