"""The gateway's pure codecs and mappings: DC-09, SOS Access, SCAIP, SIP, event identity."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import crcmod.crcmod
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway import codes, model, scaip, sia_dc09, sip, sos_access
from gateway.errors import ProtocolError
from gateway.model import Protocol, Sender, Translated, event_id_for, to_event
from larmkedja.events import Kind

NOW = datetime(2026, 11, 23, 21, 30, tzinfo=UTC)
SENDER = Sender(protocol=Protocol.SIA_DC09, sender_id="1234", site="s", device_id="d-1")


# --- SIA DC-09 ---------------------------------------------------------------------------


def frame(content: str) -> bytes:
    raw = content.encode()
    return b"\n" + f"{sia_dc09.crc16(raw):04X}{len(raw):04X}".encode() + raw + b"\r"


def test_crc16_matches_the_standard_check_value() -> None:
    assert sia_dc09.crc16(b"123456789") == 0xBB3D  # CRC-16/ARC, what DC-07 specifies


def test_the_crc_is_computed_in_c() -> None:
    """crcmod falls back to pure Python where it has no compiled extension, several times
    slower than the gateway's own table was: it must not do so unnoticed."""
    assert crcmod.crcmod._usingExtension


def crc16_arc_bitwise(data: bytes) -> int:
    """CRC-16/ARC as its definition reads (poly 0x8005 reflected = 0xA001, init 0, no final
    XOR), a bit at a time: the reference the table-driven one is held to."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


@settings(max_examples=500)
@given(st.binary(max_size=1100))
@example(b"")
@example(b"\xff")
def test_crc16_is_the_bitwise_crc_of_any_bytes(data: bytes) -> None:
    assert sia_dc09.crc16(data) == crc16_arc_bitwise(data)


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]),
    )
)
def test_a_timestamp_is_written_as_strftime_writes_it(when: datetime) -> None:
    """The answers' `_HH:MM:SS,MM-DD-YYYY` (UTC) is formatted once a second and cached."""
    expected = when.astimezone(UTC).strftime("_%H:%M:%S,%m-%d-%Y")
    assert sia_dc09._stamp(when) == expected
    assert sia_dc09._stamp(when) == expected  # from the cache


@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)))
def test_a_blocks_time_in_the_event_identity_is_str_of_its_timestamp(when: datetime) -> None:
    """The identity (so the event id) takes the block's time as `str(timestamp)` wrote it
    before it was made from the block's digits: the ids of a retry across an upgrade match."""
    block = sia_dc09.parse_block(
        sia_dc09.sender_block(account="1234", seq=7, data="#1234|NMA1", now=when)
    )
    opened = sia_dc09.open_block(block, key=None)
    assert opened.timestamp == when.replace(microsecond=0)
    assert opened.stamp_text == str(opened.timestamp)


def test_a_plain_sia_block_with_two_events_and_a_timestamp() -> None:
    block = sia_dc09.parse_block(
        frame('"SIA-DCS"0042R1L2#1234[#1234|Nri3/MA01/FA02]_21:30:05,11-23-2026')
    )
    opened = sia_dc09.open_block(block, key=None)
    assert opened.timestamp == NOW + timedelta(seconds=5)
    kinds = [(m.kind, m.data.get("zone")) for m in sia_dc09.translate(block, opened)]
    assert kinds == [(Kind.ALARM_BUTTON, "01"), (Kind.ALARM_SMOKE, "02")]


def test_an_encrypted_round_trip_with_our_own_ack() -> None:
    key = bytes(range(16))
    block = sia_dc09.parse_block(frame('"*NULL"0001R0L0#77['))
    encrypted = sia_dc09.ack(block, now=NOW, key=key)
    answer = sia_dc09.parse_block(encrypted)
    assert answer.mtype == "ACK" and answer.encrypted
    assert sia_dc09.open_block(answer, key=key).timestamp == NOW


@settings(max_examples=1000)
@given(st.integers(0, 2**32), st.sampled_from(["ADM-CID", "SIA-DCS", "NULL"]))
@example(20261, "SIA-DCS")  # a `|` near the garbage's end, then printable bytes by chance
def test_a_block_opened_with_the_wrong_key_is_a_key_error(seed: int, mtype: str) -> None:
    """Wrong-key garbage looks like a damaged payload in a few per cent of blocks: never a
    format error. The layout is dc09-spt's: padding (no `|`), `|`, the data, the timestamp."""
    right, wrong = bytes(range(16)), seed.to_bytes(16, "big")
    body = {"ADM-CID": "#1234|1100 01 003]", "SIA-DCS": "#1234|NMA1]", "NULL": "]"}[mtype]
    tail = "|" + body + "_21:30:00,11-23-2026"
    pad = "".join(chr(20 + (seed >> i) % 100) for i in range((-len(tail)) % 16 or 16))
    plain = (pad.replace("|", "x") + tail).encode()
    encryptor = sia_dc09._aes(right).encryptor()
    cipher = encryptor.update(plain) + encryptor.finalize()
    block = sia_dc09.parse_block(frame(f'"*{mtype}"0001#1234[{cipher.hex().upper()}'))
    assert sia_dc09.open_block(block, key=right).timestamp == NOW
    with pytest.raises(ProtocolError) as caught:
        sia_dc09.open_block(block, key=wrong)
    assert caught.value.code == "key"


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ('"SIA-DCS"0001#1234[#1234|NMA1]', None),
        ('"SIA-DCS"0001#1234#1234|NMA1]', "format"),
        ('"SIA-DCS"0001#1234[#1234|N]', "format"),
        ('"XYZ"0001#1234[#1234|NMA1]', "type"),
        ('"ADM-CID"0001#1234[#1234|1100 01]', "format"),
    ],
)
def test_block_contents(content: str, code: str | None) -> None:
    def run() -> list[Translated]:
        block = sia_dc09.parse_block(frame(content))
        return sia_dc09.translate(block, sia_dc09.open_block(block, key=None))

    if code is None:
        assert run()[0].kind is Kind.ALARM_BUTTON
    else:
        with pytest.raises(ProtocolError) as caught:
            run()
        assert caught.value.code == code


def test_frames_are_taken_from_a_stream_across_reads_and_noise() -> None:
    one, two = frame('"NULL"0001#1[]'), frame('"NULL"0002#1[]')
    buffer = bytearray(b"noise" + one + two[:5])
    assert sia_dc09.take_frame(buffer) == one
    assert sia_dc09.take_frame(buffer) is None
    buffer += two[5:]
    assert sia_dc09.take_frame(buffer) == two


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_any_bytes_are_a_block_or_a_protocol_error(data: bytes) -> None:
    buffer = bytearray(data)
    for _ in range(50):
        try:
            taken = sia_dc09.take_frame(buffer)
        except ProtocolError:
            continue
        if taken is None:
            break
        try:
            block = sia_dc09.parse_block(taken)
            sia_dc09.translate(block, sia_dc09.open_block(block, key=bytes(16)))
        except ProtocolError:
            pass


def test_the_time_window_edges() -> None:
    assert sia_dc09.in_window(NOW - timedelta(seconds=40), now=NOW)
    assert not sia_dc09.in_window(NOW - timedelta(seconds=41), now=NOW)
    assert sia_dc09.in_window(NOW + timedelta(seconds=20), now=NOW)
    assert not sia_dc09.in_window(NOW + timedelta(seconds=21), now=NOW)
    assert not sia_dc09.in_window(None, now=NOW)


# --- code tables -------------------------------------------------------------------------


def test_unknown_alarm_codes_are_alarms_and_the_rest_prove_life() -> None:
    assert codes.sia_kind("ZA") is Kind.ALARM_OTHER
    assert codes.sia_kind("ZZ") is Kind.HEARTBEAT
    assert codes.cid_kind("1", "199") is Kind.ALARM_OTHER
    assert codes.cid_kind("1", "799") is Kind.HEARTBEAT
    assert codes.cid_kind("3", "101") is Kind.ALARM_CANCEL
    assert codes.cid_kind("3", "301") is Kind.POWER_MAINS_RESTORED


@pytest.mark.parametrize(
    ("code", "restore", "kind", "cancels"),
    [
        ("MA", False, Kind.ALARM_BUTTON, None),
        ("MA", True, Kind.ALARM_CANCEL, Kind.ALARM_BUTTON),
        ("MH", False, Kind.ALARM_CANCEL, None),
        ("AT", True, Kind.POWER_MAINS_RESTORED, None),
        ("100", False, Kind.ALARM_BUTTON, None),
        ("100", True, Kind.ALARM_CANCEL, Kind.ALARM_BUTTON),
        ("FALL", False, Kind.ALARM_FALL, None),
        ("Whatever", False, Kind.ALARM_OTHER, None),
        ("YT", True, Kind.HEARTBEAT, None),
    ],
)
def test_sos_access_event_codes(code: str, restore: bool, kind: Kind, cancels: Kind | None) -> None:
    assert sos_access.alarm_kind(code, restore=restore) == (kind, cancels)


# --- SOS Access --------------------------------------------------------------------------

HEADER = b'<?xml version="1.0" encoding="iso-8859-1"?>\n'


def alarm(**fields: str) -> bytes:
    base = {
        "authentication": "x" * 15,
        "receiver": "r",
        "transmittertype": "SV300",
        "transmittercode": "TX1",
        "eventcode": "MA",
    } | fields
    body = "".join(f"<{k}>{v}</{k}>" for k, v in base.items() if v is not None)
    return HEADER + f"<alarmrequest>{body}</alarmrequest>".encode("latin-1")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (alarm(), None),
        (alarm(eventcode=""), sos_access.Status.MANDATORY_MISSING),
        (alarm(alarmtype="XX"), sos_access.Status.WRONG_CONTENT),
        (alarm(transmittertime="yesterday"), sos_access.Status.WRONG_CONTENT),
        (alarm(authentication="short"), sos_access.Status.WRONG_CONTENT),
        (alarm()[len(HEADER) :], sos_access.Status.XML_HEADER),
        (HEADER + b"<alarmrequest>", sos_access.Status.INVALID_XML),
        (HEADER + b"<order/>", sos_access.Status.WRONG_CONTENT),
        (alarm(additionalinfo="x" * 20_000), sos_access.Status.INVALID_LENGTH),
        (HEADER + b'<!DOCTYPE a [<!ENTITY e "x">]><pingrequest>&e;</pingrequest>',
         sos_access.Status.INVALID_XML),
    ],
)  # fmt: skip
def test_sos_access_requests(raw: bytes, status: sos_access.Status | None) -> None:
    if status is None:
        assert sos_access.parse(raw).transmitter == "TX1"
    else:
        with pytest.raises(ProtocolError) as caught:
            sos_access.parse(raw)
        assert caught.value.code == str(int(status))


def test_an_alarm_with_reference_has_an_identity_and_one_without_does_not() -> None:
    with_ref = sos_access.translate(sos_access.parse(alarm(reference="r1")))
    without = sos_access.translate(sos_access.parse(alarm()))
    assert with_ref.identity is not None and not with_ref.exact
    assert without.identity is None  # every delivery a new event: a press is never lost


@given(st.binary(max_size=400))
def test_any_bytes_are_a_request_or_a_status(data: bytes) -> None:
    try:
        sos_access.parse(HEADER + data)
    except ProtocolError as exc:
        assert int(exc.code) in {int(s) for s in sos_access.Status}


# --- SCAIP and SIP -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"mty": "ME", "stc": "0010", "dty": "0003"}, Kind.ALARM_BUTTON),
        ({"mty": "ME", "stc": "0009", "dty": "0005"}, Kind.ALARM_FALL),
        ({"mty": "ME", "stc": "10", "dty": "23"}, Kind.ALARM_SMOKE),
        ({"mty": "ME", "stc": "0019", "dty": "3"}, Kind.ALARM_CANCEL),
        ({"mty": "RE", "dty": "3"}, Kind.ALARM_CANCEL),
        ({"mty": "PI", "stc": "0009", "dty": "2"}, Kind.HEARTBEAT),
        ({"mty": "ME", "stc": "0085", "dty": "2"}, Kind.POWER_MAINS_LOST),
        ({"mty": "IN", "stc": "0016", "dty": "2"}, Kind.BATTERY_LOW),
        ({"mty": "ME", "stc": "0125", "dty": "2"}, Kind.TAMPER),
        ({"mty": "ME", "stc": "0067", "dty": "2"}, Kind.ALARM_OTHER),  # unknown: look at it
        ({"mty": "IN", "stc": "0067", "dty": "2"}, Kind.HEARTBEAT),
        ({"dty": "3"}, Kind.ALARM_BUTTON),  # mty defaults to ME, stc to a manual alarm
    ],
)
def test_scaip_kinds(fields: dict[str, str], kind: Kind) -> None:
    assert scaip.kind_of(scaip.Mrq(fields={"ref": "1", "cid": "1", **fields})) is kind


@given(
    mty=st.sampled_from(["ME", "RE", "IN", "PI"]),
    stc=st.integers(0, 9999),
    dty=st.integers(0, 9999),
    did=st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=8),
)
def test_every_scaip_request_makes_a_valid_contract_event(
    mty: str, stc: int, dty: int, did: str
) -> None:
    mrq = scaip.Mrq(
        fields={"ref": "1", "cid": "9", "mty": mty, "stc": str(stc), "dty": str(dty), "did": did}
    )
    event = to_event(SENDER, scaip.translate(mrq, heartbeat_s=90), received_at=NOW)
    assert event.device_id == "d-1"


def test_scaip_answers_echo_the_reference_and_escape_it() -> None:
    assert b"<ref>00001883</ref><snu>0</snu><hbi>1</hbi>" in scaip.answer(
        "00001883", scaip.Snu.OK, hbi=1
    )
    assert b"&lt;x&gt;" in scaip.answer("<x>", scaip.Snu.INVALID_FORMAT, "bad")
    assert scaip.hbi_for(60) == 1 and scaip.hbi_for(120) == 2 and scaip.hbi_for(10**6) == 4


SIP = (
    b"MESSAGE sip:alarm@h SIP/2.0\r\nv: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK1\r\n"
    b"f: <sip:26317@1.2.3.4>;tag=a\r\nt: <sip:alarm@h>\r\ni: call-1\r\nCSeq: 7 MESSAGE\r\n"
    b"c: application/scaip+xml\r\nl: 5\r\n\r\n<mrq>trailing"
)


def test_sip_compact_headers_body_framing_and_a_stateless_response() -> None:
    request = sip.parse(SIP)
    assert request.body == b"<mrq>"
    assert request.content_type == scaip.CONTENT_TYPE
    assert request.user() == "26317"
    response = sip.response(request, 200, body=b"<mrs/>", content_type=scaip.CONTENT_TYPE)
    assert response.startswith(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK1")
    assert b"To: <sip:alarm@h>;tag=" in response
    assert response == sip.response(request, 200, body=b"<mrs/>", content_type=scaip.CONTENT_TYPE)
    assert response.endswith(b"Content-Length: 6\r\n\r\n<mrs/>")


def test_sip_messages_are_framed_from_a_tcp_stream() -> None:
    whole = SIP.replace(b"<mrq>trailing", b"<mrq>")
    buffer = bytearray(b"\r\n" + whole + whole[:20])
    assert sip.take_message(buffer) == whole
    assert sip.take_message(buffer) is None
    buffer += whole[20:]
    assert sip.take_message(buffer) == whole


@given(st.binary(max_size=400))
def test_any_bytes_are_a_sip_request_or_a_protocol_error(data: bytes) -> None:
    try:
        sip.parse(data)
    except ProtocolError:
        pass
    buffer = bytearray(data)
    try:
        sip.take_message(buffer)
    except ProtocolError:
        pass


# --- identity ----------------------------------------------------------------------------


def test_the_same_message_in_the_same_bucket_has_the_same_event_id() -> None:
    message = Translated(kind=Kind.ALARM_BUTTON, identity="ref-1")
    first = event_id_for(SENDER, message, received_at=NOW)
    assert first == event_id_for(SENDER, message, received_at=NOW + timedelta(seconds=30))
    assert first != event_id_for(SENDER, message, received_at=NOW + timedelta(days=7))
    other = Sender(protocol=Protocol.SIA_DC09, sender_id="9", site="s", device_id="d-1")
    assert first != event_id_for(other, message, received_at=NOW)
    assert event_id_for(SENDER, Translated(kind=Kind.HEARTBEAT), received_at=NOW) is None


def test_a_device_clock_a_day_off_is_not_the_event_time() -> None:
    message = Translated(kind=Kind.HEARTBEAT, ts=NOW - timedelta(days=3))
    assert to_event(SENDER, message, received_at=NOW).ts == NOW
    hb = Sender(
        protocol=Protocol.SOS_ACCESS, sender_id="t", site="s", device_id="d", heartbeat_s=180
    )
    assert to_event(hb, message, received_at=NOW).data == {"interval_s": 180}


@given(st.text())
@example("sia-dc09\x1f1234\x1f0042\x1fSIA-DCS\x1f#1234|NMA01\x1f2026-11-23 21:30:05+00:00\x1f0")
def test_event_ids_are_the_standard_uuid5_of_their_name(name: str) -> None:
    assert model.uuid5(name) == uuid.uuid5(model.EVENT_NAMESPACE, name)


def test_a_blocks_event_ids_and_wire_form_are_what_they_were() -> None:
    """Pinned from the gateway before its per-block work was cut down (issue 21): the same
    block gives the same event ids and JSON, so a panel's retry across an upgrade is stored
    once."""
    now = datetime(2026, 11, 23, 21, 30, 5, tzinfo=UTC)
    block = sia_dc09.parse_block(
        sia_dc09.sender_block(account="1234", seq=42, data="#1234|Nri3/MA01/FA02", now=now)
    )
    messages = sia_dc09.translate(block, sia_dc09.open_block(block, key=None))
    events = [to_event(SENDER, m, received_at=now) for m in messages]
    assert [str(e.event_id) for e in events] == [
        "e2fb9a6a-def7-505f-9242-83a6141ba3d9",
        "7566ce1a-924b-5af5-9c94-a68bae8aa4bd",
    ]
    assert events[1].to_json() == (
        b'{"v":1,"event_id":"7566ce1a-924b-5af5-9c94-a68bae8aa4bd","device_id":"d-1",'
        b'"ts":"2026-11-23T21:30:05Z","kind":"alarm.smoke","data":{"protocol":"sia-dc09",'
        b'"code":"FA","area":"3","zone":"02","component":"zone 02"}}'
    )
