"""The consumer's read path (`larmkedja.mqtt_fast_paho.FastConsumer`) over a real socket: what
it takes from paho's internals, publishes in lists, other packets through paho's handler in
order, back-pressure, batched PUBACKs, and a close that does not reset the connection."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from paho.mqtt.enums import MQTTErrorCode, _ConnectionState

from larmkedja.mqtt_fast_paho import FastConsumer, _idle_packet
from larmkedja.mqtt_paho import bare_client
from larmkedja.mqtt_wire import Publish
from tests.unit.paho_loopback import assert_paho_has, connected

PINGRESP = b"\xd0\x00"


def publish(topic: bytes, payload: bytes, mid: int) -> bytes:
    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid) + b"\x00" + payload
    assert len(body) < 128
    return bytes([0x32, len(body)]) + body


@pytest.fixture
def pair() -> Iterator[tuple[FastConsumer, socket.socket]]:
    """A v5 consumer 'connected' to `peer` over loopback TCP."""
    client = bare_client(client_id="t", manual_ack=True, cls=FastConsumer)
    assert isinstance(client, FastConsumer)
    with connected(client) as pair:
        yield pair


def read_all(client: FastConsumer) -> None:
    for _ in range(20):
        if client._packet_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return


def test_paho_still_has_what_the_read_path_replaces() -> None:
    """paho is pinned; if an upgrade moves these, this fails before anything else does."""
    client = assert_paho_has(
        methods=("_packet_read", "_packet_handle", "_packet_queue", "_sock_recv", "_sock_close"),
        attributes=("_in_packet", "_msgtime_mutex", "_last_bytes_received", "_protocol", "_state"),
    )
    assert set(client._in_packet) == set(_idle_packet())


def test_publishes_split_over_reads_arrive_whole_in_order(
    pair: tuple[FastConsumer, socket.socket],
) -> None:
    client, peer = pair
    got: list[list[Publish]] = []
    client.on_publishes = got.append
    stream = b"".join(publish(b"a/b", b"x" * i, i + 1) for i in range(10))
    peer.sendall(stream[:37])
    read_all(client)
    peer.sendall(stream[37:])
    read_all(client)
    flat = [p for batch in got for p in batch]
    assert flat == [Publish(b"a/b", b"x" * i, i + 1, 1) for i in range(10)]
    assert len(got) <= 3  # a read's publishes come as one list, not one call each


def test_other_packets_go_to_paho_after_the_publishes_before_them(
    pair: tuple[FastConsumer, socket.socket],
) -> None:
    client, peer = pair
    seen: list[object] = []
    client.on_publishes = lambda batch: seen.append(("publishes", client._ping_t, len(batch)))
    client._ping_t = 123.0  # paho's PINGRESP handler clears it
    peer.sendall(publish(b"t", b"1", 1) + PINGRESP + publish(b"t", b"2", 2))
    read_all(client)
    assert seen == [("publishes", 123.0, 1), ("publishes", 0, 1)]


def test_while_full_the_socket_is_not_read(pair: tuple[FastConsumer, socket.socket]) -> None:
    client, peer = pair
    got: list[Publish] = []
    client.on_publishes = got.extend
    full = True
    client.full = lambda: full
    peer.sendall(publish(b"t", b"1", 1))
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_AGAIN
    assert got == []
    full = False
    client.room.set()
    read_all(client)
    assert [p.mid for p in got] == [1]


def test_a_batch_of_acks_is_one_write_of_pubacks(pair: tuple[FastConsumer, socket.socket]) -> None:
    client, peer = pair
    client.ack_many([1, 2, 300])
    peer.settimeout(2)
    data = b""
    while len(data) < 12:
        data += peer.recv(64)
    assert data == b"\x40\x02\x00\x01" + b"\x40\x02\x00\x02" + b"\x40\x02\x01\x2c"


def test_a_malformed_packet_is_a_protocol_error(pair: tuple[FastConsumer, socket.socket]) -> None:
    client, peer = pair
    client.on_publishes = lambda batch: None
    peer.sendall(b"\x30\xff\xff\xff\xff\x01")
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_PROTOCOL


def test_a_deliberate_close_with_unread_input_ends_with_fin_not_reset(
    pair: tuple[FastConsumer, socket.socket],
) -> None:
    """Closing with unread bytes makes the kernel send RST, and Mosquitto then drops the
    PUBACKs it had not read yet; after DISCONNECT the consumer reads until the broker closes."""
    client, peer = pair
    peer.sendall(publish(b"t", b"unread", 1) * 20)  # input the consumer never reads
    client._state = _ConnectionState.MQTT_CS_DISCONNECTING
    outcome: list[object] = []

    def broker() -> None:
        peer.settimeout(5)
        try:
            while peer.recv(4096):
                pass
            outcome.append("eof")
            peer.close()  # as Mosquitto does after the client's DISCONNECT
        except OSError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=broker)
    thread.start()
    client._sock_close()
    thread.join(10)
    assert outcome == ["eof"]
