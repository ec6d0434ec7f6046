"""The gateway's publish path (`larmkedja.mqtt_publish_paho.FastPublisher`) over a real socket,
the test playing the broker: what it takes from paho's internals, a pass's publishes in one
write, PUBACKs to `on_puback` with other packets through paho in order, the broker's Receive
Maximum, and a socket that takes only part of a write."""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from larmkedja.mqtt_paho import bare_client
from larmkedja.mqtt_publish_paho import NO_LIMIT, FastPublisher
from larmkedja.mqtt_wire import Frame, Publish, decode_publish, encode_publish, next_frame
from tests.unit.paho_loopback import assert_paho_has, connected

PINGRESP = b"\xd0\x00"


def puback(mid: int, reason: int | None = None) -> bytes:
    if reason is None:
        return struct.pack("!BBH", 0x40, 2, mid)
    return struct.pack("!BBHB", 0x40, 3, mid, reason)


@pytest.fixture
def pair() -> Iterator[tuple[FastPublisher, socket.socket]]:
    client = bare_client(client_id="t", cls=FastPublisher)
    assert isinstance(client, FastPublisher)
    with connected(client) as pair:
        yield pair


def received(peer: socket.socket, size: int) -> list[Publish]:
    """What the broker reads: `size` bytes of PUBLISH packets."""
    peer.settimeout(5)
    data = b""
    while len(data) < size:
        chunk = peer.recv(1 << 20)
        assert chunk, "closed"
        data += chunk
    out, pos = [], 0
    while (frame := next_frame(data, pos)) is not None:
        publish = decode_publish(data, frame, v5=True)
        assert publish is not None
        out.append(publish)
        pos = frame.end
    assert pos == len(data)
    return out


def test_paho_still_has_what_the_publish_path_replaces() -> None:
    assert_paho_has(
        methods=("_sock_send", "_packet_queue", "_mid_generate", "_handle_connack", "loop_write"),
        attributes=("_out_packet", "_msgtime_mutex", "_last_msg_out", "_protocol", "_in_packet"),
    )


def test_the_publishes_of_a_pass_go_out_in_one_write(
    pair: tuple[FastPublisher, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, peer = pair
    writes: list[int] = []
    send = client._sock_send

    def counted(data: bytes) -> int:
        writes.append(len(data))
        return send(data)

    monkeypatch.setattr(client, "_sock_send", counted)
    mids = [client.queue_publish(b"larm/v1/s/d/events", b"e%d" % i) for i in range(5)]
    assert writes == []  # queued, not written
    client.flush()
    assert len(writes) == 1
    got = received(peer, writes[0])
    assert got == [Publish(b"larm/v1/s/d/events", b"e%d" % i, m, 1) for i, m in enumerate(mids)]
    assert not client.want_write()


def test_pubacks_reach_on_puback_and_other_packets_go_to_paho_in_order(
    pair: tuple[FastPublisher, socket.socket],
) -> None:
    client, peer = pair
    seen: list[tuple[int, int, float]] = []
    client.on_puback = lambda mid, reason: seen.append((mid, reason, client._ping_t))
    client._ping_t = 123.0  # paho's PINGRESP handler clears it
    peer.sendall(puback(1) + puback(2, 0x10) + PINGRESP + puback(3, 0x87)[:3])
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    peer.sendall(puback(3, 0x87)[3:])
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert seen == [(1, 0, 123.0), (2, 0x10, 123.0), (3, 0x87, 0)]


def test_no_more_than_the_brokers_receive_maximum_are_in_flight(
    pair: tuple[FastPublisher, socket.socket],
) -> None:
    client, peer = pair
    client.window = 2
    mids = [client.queue_publish(b"t", b"%d" % i) for i in range(4)]
    client.flush()
    one = len(encode_publish(b"t", b"0", 1, v5=True))
    assert [p.mid for p in received(peer, 2 * one)] == mids[:2]
    peer.sendall(puback(mids[0]))
    client._packet_read()  # a slot: the next in line goes out in the same pass
    assert [p.mid for p in received(peer, one)] == mids[2:3]
    peer.sendall(puback(mids[1]) + puback(mids[2]))
    client._packet_read()
    assert [p.mid for p in received(peer, one)] == mids[3:]
    peer.sendall(puback(mids[3]))
    client._packet_read()
    assert client._inflight == 0


def test_what_the_socket_does_not_take_paho_writes_after_it_in_order(
    pair: tuple[FastPublisher, socket.socket],
) -> None:
    client, peer = pair
    assert isinstance(client._sock, socket.socket)
    client._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    payloads = [bytes([i]) * 300_000 for i in range(4)]
    mids = [client.queue_publish(b"t", p) for p in payloads]
    client.flush()
    assert client.want_write(), "the socket took it all: the test cannot show the rest"
    peer.settimeout(0.05)
    data = bytearray(peer.recv(1 << 20))  # room in the socket again, paho still holds some
    late = client.queue_publish(b"t", b"late")  # behind what paho holds
    client.flush()
    size = sum(len(encode_publish(b"t", p, 1, v5=True)) for p in [*payloads, b"late"])
    deadline = time.monotonic() + 10
    while len(data) < size and time.monotonic() < deadline:
        client.loop_write()
        with contextlib.suppress(TimeoutError):
            data += peer.recv(1 << 20)
    got = [decode_publish(data, f, v5=True) for f in _frames(bytes(data))]
    expected = [*zip(mids, payloads, strict=True), (late, b"late")]
    assert [(p.mid, p.payload) for p in got if p] == expected


def _frames(data: bytes) -> Iterator[Frame]:
    pos = 0
    while (frame := next_frame(data, pos)) is not None:
        yield frame
        pos = frame.end


def test_a_new_connection_takes_the_brokers_receive_maximum_and_forgets_the_old_one(
    pair: tuple[FastPublisher, socket.socket],
) -> None:
    client, _ = pair
    client.window = 1
    client.queue_publish(b"t", b"1")
    client.queue_publish(b"t", b"2")  # held
    props = Properties(PacketTypes.CONNACK)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = 7
    body = b"\x00\x00" + bytes(props.pack())  # type: ignore[no-untyped-call]
    client._in_packet |= {"command": 0x20, "packet": bytearray(body)}
    client._handle_connack()
    assert (client.window, client._inflight, client._pending, len(client._held)) == (7, 0, [], 0)
    client._in_packet |= {"command": 0x20, "packet": bytearray(b"\x00\x00\x00")}
    client._handle_connack()
    assert client.window == NO_LIMIT
