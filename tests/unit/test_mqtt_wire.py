"""The receive path's decoder against paho's own: generated PUBLISH packets, split and
concatenated at random, and malformed ones. Where paho refuses a packet, so do we, except for
the text inside v5 properties, which we skip unread. The publisher's side likewise: the PUBLISH
we encode is the one paho sends, the PUBACK we decode says what paho reads in it."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from larmkedja.mqtt_wire import (
    Frame,
    Publish,
    WireError,
    decode_puback,
    decode_publish,
    decode_short_publishes,
    encode_publish,
    next_frame,
)

V5, V311 = MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311


def remaining(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(header: int, body: bytes) -> bytes:
    return bytes([header]) + remaining(len(body)) + body


# MQTT strings: UTF-8 without U+0000 (paho refuses a NUL on decoding; Mosquitto before it).
ALPHABET = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
TEXT = st.text(ALPHABET, max_size=12)


@st.composite
def props(draw: st.DrawFn) -> bytes:
    p = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if draw(st.booleans()):
        p.PayloadFormatIndicator = draw(st.integers(0, 1))
    if draw(st.booleans()):
        p.MessageExpiryInterval = draw(st.integers(0, 2**32 - 1))
    if draw(st.booleans()):
        p.ContentType = draw(TEXT)
    if draw(st.booleans()):
        p.ResponseTopic = draw(st.text(ALPHABET, min_size=1, max_size=20))
    if draw(st.booleans()):
        p.CorrelationData = draw(st.binary(max_size=20))
    for _ in range(draw(st.integers(0, 3))):
        p.UserProperty = (draw(TEXT), draw(TEXT))
    return bytes(p.pack())  # type: ignore[no-untyped-call]


@st.composite
def publishes(draw: st.DrawFn, v5: bool) -> tuple[bytes, bytes, bytes, int]:
    """(whole packet, topic, payload, mid) of a QoS 1 PUBLISH."""
    topic = draw(st.binary(min_size=1, max_size=80))
    payload = draw(st.binary(max_size=600))
    mid = draw(st.integers(1, 65535))
    flags = 0x02 | (0x08 if draw(st.booleans()) else 0) | (1 if draw(st.booleans()) else 0)
    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid)
    body += (draw(props()) if v5 else b"") + payload
    return packet(0x30 | flags, body), topic, payload, mid


def frames(stream: bytes, cuts: list[int]) -> list[tuple[Frame, bytes]]:
    """Feed `stream` in the chunks `cuts` gives, as the client does; every complete frame."""
    buf, out, fed = bytearray(), [], 0
    for cut in [*sorted(cuts), len(stream)]:
        buf += stream[fed:cut]
        fed = max(fed, cut)
        pos = 0
        while (frame := next_frame(buf, pos)) is not None:
            out.append((frame, bytes(buf[frame.start : frame.end])))
            pos = frame.end
        del buf[:pos]
    assert not buf
    return out


@settings(max_examples=300)
@given(st.booleans(), st.data())
def test_publishes_decode_as_paho_decodes_them(v5: bool, data: st.DataObject) -> None:
    proto = V5 if v5 else V311
    packets = data.draw(st.lists(publishes(v5), min_size=1, max_size=8))
    stream = b"".join(p for p, *_ in packets)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    found = frames(stream, cuts)
    assert len(found) == len(packets)
    for (frame, body), (_, topic, payload, mid) in zip(found, packets, strict=True):
        ours = decode_publish(body, Frame(frame.header, 0, len(body)), v5=v5)
        theirs = _packet.decode_publish(frame.header, body, proto)
        assert ours == Publish(topic, payload, mid, 1)
        assert (theirs.topic, theirs.payload, theirs.mid, theirs.qos) == tuple(ours)


@settings(max_examples=500)
@given(st.booleans(), st.integers(0, 15), st.binary(max_size=64))
def test_malformed_bodies_are_refused_where_paho_refuses_them(
    v5: bool, flags: int, body: bytes
) -> None:
    header = 0x30 | (flags & 0x0F)
    refusal = ""
    try:
        theirs = _packet.decode_publish(header, body, V5 if v5 else V311)
    except Exception as exc:
        theirs, refusal = None, str(exc)
    try:
        ours = decode_publish(body, Frame(header, 0, len(body)), v5=v5)
    except WireError:
        assert theirs is None, f"paho decodes what we refuse: {theirs}"
        return
    if ours is None:
        return  # not ours to decode (QoS 0/2, a topic alias): paho's handler takes it
    if theirs is None:
        # The one thing we do not check: the UTF-8 inside v5 properties we skip (the broker
        # checked it when it took the message from its publisher).
        assert v5 and "UTF-8" in refusal, f"we decode what paho refuses: {refusal}"
        return
    assert (theirs.topic, theirs.payload, theirs.mid, theirs.qos) == tuple(ours)


def decode_stream(buf: bytes, v5: bool, *, runs: bool) -> tuple[list[object], int]:
    """What the reader makes of `buf`: each packet's decoded publish (None: paho's to handle)
    or the refusal, and where it stopped (an incomplete packet). With `runs`, as the consumer
    does: each run of short publishes in one step, the general path for the rest."""
    out: list[object] = []
    pos = 0
    while True:
        if runs:
            taken: list[Publish] = []
            pos = decode_short_publishes(buf, pos, v5=v5, into=taken)
            out += taken
        try:
            frame = next_frame(buf, pos)
            if frame is None:
                return out, pos
            out.append(decode_publish(buf, frame, v5=v5))
        except WireError:
            out.append("refused")
            return out, pos
        pos = frame.end


OTHER_PACKETS = st.sampled_from(
    [
        packet(0x40, b"\x00\x07"),  # PUBACK
        packet(0xD0, b""),  # PINGRESP
        packet(0x30, b"\x00\x01t" + b"qos 0"),  # QoS 0
        packet(0x34, b"\x00\x01t\x00\x09" + b"qos 2"),
        packet(0x32, b"\x00\x00\x00\x05\x03\x23\x00\x01x"),  # v5 topic alias
        packet(0x32, b"\x00"),  # too short: refused
    ]
)


@settings(max_examples=400)
@given(st.booleans(), st.data())
def test_short_publishes_decode_as_the_general_path(v5: bool, data: st.DataObject) -> None:
    """Streams of publishes (some with properties, some over 16 KiB), other packets and
    malformed ones, cut anywhere: the same publishes, refusals and stopping place."""
    big = st.integers(16_300, 16_500).map(
        lambda n: packet(0x32, b"\x00\x01t\x00\x01" + b"\x00" * v5 + b"p" * n)
    )
    parts = data.draw(
        st.lists(st.one_of(publishes(v5).map(lambda p: p[0]), OTHER_PACKETS, big), max_size=8)
    )
    stream = b"".join(parts)
    cut = data.draw(st.integers(0, len(stream)))
    for buf in (stream, stream[:cut]):
        assert decode_stream(buf, v5, runs=True) == decode_stream(buf, v5, runs=False)


@settings(max_examples=500)
@given(st.booleans(), st.binary(max_size=80))
def test_short_publishes_never_take_what_the_general_path_refuses(v5: bool, raw: bytes) -> None:
    buf = b"\x32" + raw
    assert decode_stream(buf, v5, runs=True) == decode_stream(buf, v5, runs=False)


def test_a_remaining_length_over_four_bytes_is_a_protocol_error() -> None:
    with pytest.raises(WireError):
        next_frame(b"\x30\xff\xff\xff\xff\x01", 0)
    assert next_frame(b"\x30\xff\xff\xff\x7f", 0) is None  # 268 MB announced: not yet here


def test_an_oversized_announced_length_only_waits() -> None:
    assert next_frame(b"\x30\x80\x80\x01" + b"x" * 100, 0) is None


def test_qos_0_2_and_topic_aliases_are_left_to_paho() -> None:
    body = struct.pack("!H", 3) + b"a/b" + b"payload"
    assert decode_publish(body, Frame(0x30, 0, len(body)), v5=False) is None
    alias = struct.pack("!H", 0) + struct.pack("!H", 7) + b"\x03\x23\x00\x01" + b"x"
    assert decode_publish(alias, Frame(0x32, 0, len(alias)), v5=True) is None


def paho_publish(topic: bytes, payload: bytes, mid: int, *, v5: bool) -> bytes:
    """The QoS 1 PUBLISH stock paho queues for these (its `_send_publish`)."""
    client = Client(CallbackAPIVersion.VERSION2, protocol=V5 if v5 else V311)
    client._sock = object()  # type: ignore[assignment]  # only checked for None
    client._on_socket_register_write = lambda *_: None  # keeps paho from writing it
    client._send_publish(mid, topic, payload, qos=1)
    client._sock = None
    return bytes(client._out_packet.popleft()["packet"])


@settings(max_examples=300)
@given(
    st.booleans(),
    st.binary(min_size=1, max_size=300).filter(lambda t: b"+" not in t and b"#" not in t),
    st.one_of(st.binary(max_size=100), st.integers(100, 20_000).map(lambda n: b"p" * n)),
    st.integers(1, 65535),
)
def test_a_publish_is_encoded_as_paho_encodes_it(
    v5: bool, topic: bytes, payload: bytes, mid: int
) -> None:
    ours = encode_publish(topic, payload, mid, v5=v5)
    assert ours == paho_publish(topic, payload, mid, v5=v5)
    frame = next_frame(ours, 0)
    assert frame is not None and frame.end == len(ours)
    assert decode_publish(ours, frame, v5=v5) == Publish(topic, payload, mid, 1)


@pytest.mark.parametrize(
    ("topic", "mid"), [(b"", 1), (b"a/+", 1), (b"a/#", 1), (b"t" * 65536, 1), (b"t", 0)]
)
def test_what_cannot_be_published_is_refused(topic: bytes, mid: int) -> None:
    with pytest.raises(WireError):
        encode_publish(topic, b"x", mid, v5=True)


@settings(max_examples=500)
@given(st.booleans(), st.binary(max_size=12))
def test_a_puback_decodes_as_paho_decodes_it(v5: bool, body: bytes) -> None:
    """paho checks a v5 reason code and properties; we read the code and skip the rest (the
    publisher treats any code from 0x80 as a failure, so an unknown one fails safe)."""
    try:
        theirs = _packet.decode_puback(0x40, body, V5 if v5 else V311)
    except Exception:
        theirs = None
    try:
        ours = decode_puback(body, Frame(0x40, 0, len(body)), v5=v5)
    except WireError:
        assert theirs is None, f"paho decodes what we refuse: {theirs}"
        return
    if theirs is None:
        assert v5 and len(body) > 2, "we decode what paho refuses, other than a v5 code"
        return
    assert ours == (theirs.mid, theirs.reason.value)
