"""Attacks on what the gateway can hold (issue 18), from outside, on its real sockets with the
real broker and database: a message trickled in a byte at a time (slowloris), connections and
datagrams beyond any reasonable number, and a flood of malformed messages. Each test runs the
gateway with small caps and deadlines of its own (settings) and shows that a legitimate
device is still acknowledged while the attack goes on."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import psycopg
import pytest
from dc09_spt.msg.dc09_msg import dc09_msg

from tests.conftest import Broker
from tests.gateway.attacks import (
    ATTACKER,
    Legit,
    closed_by_peer,
    connect,
    dc09_alarm,
    dc09_answer,
    dc09_exchange,
    mrq,
    read_until,
    sip_message,
    sos_request,
)
from tests.gateway.conftest import DEAD_LETTERS_PER_MINUTE, GatewayStack, gateway_stack
from tests.helpers import scalar, wait_until

pytestmark = pytest.mark.integration
DEADLINE_S = 1.0
IDLE_S = 3.0
LIFETIME_S = 5.0


@pytest.fixture
def tight(database_url: str, broker: Broker) -> Iterator[GatewayStack]:
    """A gateway with short deadlines."""
    deadlines = {
        "gateway_message_deadline_s": DEADLINE_S,
        "gateway_idle_s": IDLE_S,
        "gateway_connection_lifetime_s": LIFETIME_S,
    }
    with gateway_stack(database_url, broker, **deadlines) as stack:
        yield stack


@pytest.fixture
def capped(database_url: str, broker: Broker) -> Iterator[GatewayStack]:
    """A gateway with small caps."""
    with gateway_stack(
        database_url,
        broker,
        gateway_max_connections=6,
        gateway_max_connections_per_source=3,
        gateway_max_datagrams=20,
        gateway_max_datagrams_per_source=4,
        gateway_registry_cache_s=60,
    ) as stack:
        yield stack


def _whole_message(gw: GatewayStack, protocol: str) -> bytes:
    if protocol == "scaip":
        return sip_message(gw, "9102", mrq("9102", "T1"))
    if protocol == "sos-access":
        return sos_request("LEGIT1", "Abcdefgh1234567")
    return dc09_alarm("9100", None, 1)


def _cuts(gw: GatewayStack, protocol: str, reason: str) -> float:
    """Connections of `protocol` the gateway cut for `reason` (its metric)."""
    return gw.metric("larm_gateway_connections_cut_total", protocol=protocol, reason=reason)


def _trickle(s: socket.socket, message: bytes, *, give_up_s: float) -> float | None:
    """Send `message` a byte every 0.25 s (never its last byte); when the gateway closed the
    connection, seconds after the first byte; None if it was still open after `give_up_s`."""
    started = time.monotonic()
    for byte in message[:-1]:
        try:
            s.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
        if closed_by_peer(s, within=0.25):
            return time.monotonic() - started
        if time.monotonic() - started > give_up_s:
            return None
    return None


@pytest.mark.parametrize("protocol", ["scaip", "sos-access", "sia-dc09"])
def test_a_message_trickled_in_a_byte_at_a_time_is_cut_off_at_its_deadline(
    tight: GatewayStack, tmp_path: Path, protocol: str
) -> None:
    legit = Legit(tight, tmp_path)
    with connect(tight, protocol) as slow:
        slow.sendall(_whole_message(tight, protocol)[:1])
        assert legit.round(protocol)  # while the slow client holds its connection
        cut_after = _trickle(slow, _whole_message(tight, protocol)[1:], give_up_s=8.0)
    assert cut_after is not None, "a trickling client held its connection for 8 s"
    assert cut_after < DEADLINE_S + 1.5
    assert _cuts(tight, protocol, "slow") == 1
    assert legit.round(protocol)


def test_a_connection_that_never_brings_a_whole_message_is_closed_when_idle(
    tight: GatewayStack, tmp_path: Path
) -> None:
    """DC-09 drops line noise before a block's LF: bytes that never start a block reset no
    clock, so a client sending only those is idle, however busy it looks."""
    legit = Legit(tight, tmp_path)
    with connect(tight, "sia-dc09") as noisy:
        cut_after = _trickle(noisy, b"x" * 200, give_up_s=IDLE_S + 5)
        assert legit.round("sia-dc09")
    assert cut_after is not None, "a client sending noise held its connection"
    assert IDLE_S - 0.5 < cut_after < IDLE_S + 2
    assert _cuts(tight, "sia-dc09", "idle") == 1


def test_a_connection_busy_with_whole_messages_is_closed_at_its_lifetime(
    tight: GatewayStack, tmp_path: Path
) -> None:
    """Every block acknowledged, none ever late, and still closed between two blocks once
    the connection has been open its lifetime (a connection is no place to stay for ever)."""
    legit = Legit(tight, tmp_path)
    acks = 0
    with connect(tight, "sia-dc09", source="127.0.0.1") as panel:
        started = time.monotonic()
        for seq in range(1, 100):
            try:
                panel.sendall(dc09_alarm("9100", legit.dc09_key, 1000 + seq))
                answer = panel.recv(4096)  # one answer block: small, and it arrives whole
            except OSError:
                break
            if not answer:  # closed
                break
            assert dc09_answer(answer) == "ACK"
            acks += 1
            time.sleep(0.5)
        lived = time.monotonic() - started
    assert acks >= LIFETIME_S / 0.6
    assert LIFETIME_S - 0.5 < lived < LIFETIME_S + 1.5
    assert _cuts(tight, "sia-dc09", "lifetime") == 1


def test_a_client_that_never_reads_its_answers_is_cut_off(
    tight: GatewayStack, tmp_path: Path
) -> None:
    """Thousands of damaged blocks, each answered with a NAK, and not one answer read: the
    answers pile up in the gateway only to its write buffer's limit, then the connection is cut
    as slow within the message deadline, and a legitimate panel is acknowledged meanwhile."""
    legit = Legit(tight, tmp_path)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    with closing(s):
        s.bind((ATTACKER, 0))
        s.connect((tight.host, tight.port("sia-dc09")))
        started = time.monotonic()
        with contextlib.suppress(OSError):  # the cut may come while we still send
            s.sendall(b"\nXXXXXXXX" * 100_000)  # a bad length each: 100,000 NAKs, ~5 MB
        assert legit.round("sia-dc09")
        wait_until(
            lambda: _cuts(tight, "sia-dc09", "slow") == 1,
            timeout=DEADLINE_S + 5, what="the reader that never reads cut off",
        )  # fmt: skip
    assert time.monotonic() - started < DEADLINE_S + 5
    assert legit.round("sia-dc09")


def test_connections_over_the_caps_are_closed_at_once_and_counted(
    capped: GatewayStack, tmp_path: Path
) -> None:
    legit = Legit(capped, tmp_path)
    refused = "larm_gateway_refused_total"
    with ExitStack() as held:
        mine = [held.enter_context(connect(capped, "sia-dc09")) for _ in range(3)]
        extra = held.enter_context(connect(capped, "sia-dc09"))
        assert closed_by_peer(extra, within=2.0)  # one address: 3 at most
        assert not any(closed_by_peer(s, within=0.1) for s in mine)
        labels = {"protocol": "sia-dc09", "transport": "tcp"}
        assert capped.metric(refused, reason="source_capacity", **labels) == 1
        assert legit.round("sia-dc09")  # another address still gets in

        # Another address fills the receiver (6 in all); the next address is refused...
        def open_now() -> float:
            return capped.metric("larm_gateway_open_connections", protocol="sia-dc09")

        wait_until(lambda: open_now() == 3, timeout=5, what="the legitimate one closed")
        for _ in range(3):
            held.enter_context(connect(capped, "sia-dc09", source="127.0.0.3"))
        wait_until(lambda: open_now() == 6, timeout=5, what="six connections")
        late = held.enter_context(connect(capped, "sia-dc09", source="127.0.0.4"))
        assert closed_by_peer(late, within=2.0)
        assert capped.metric(refused, reason="capacity", **labels) == 1
        # ...and the other receivers, each with caps of its own, are not disturbed.
        assert legit.round("sos-access")
        assert legit.round("scaip")
    wait_until(lambda: _gets_through(legit, "sia-dc09"), timeout=5, what="a slot again")


def _gets_through(legit: Legit, protocol: str) -> bool:
    try:
        return legit.round(protocol)
    except (AssertionError, OSError):
        return False


def test_datagrams_over_the_caps_are_dropped_and_counted(
    capped: GatewayStack, tmp_path: Path
) -> None:
    """While the registry is slow (its table locked), a flood of datagrams for unknown
    accounts would pile up handlers without end; one address gets 4 in hand, the rest are
    dropped, and a known panel on another address is still acknowledged."""
    legit = Legit(capped, tmp_path)
    assert legit.round("sia-dc09")  # known now (cached)
    with psycopg.connect(capped.settings.database_url) as lock:
        lock.execute("LOCK TABLE gateway_senders IN ACCESS EXCLUSIVE MODE")
        with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as s:
            s.bind((ATTACKER, 0))
            for i in range(50):
                block = str(dc09_msg(f"5{i:03d}").dc09block(i + 1, "SIA-DCS", "#x|NMA1]"))
                s.sendto(block.encode(), (capped.host, capped.port("sia-dc09")))
        labels = {"protocol": "sia-dc09", "transport": "udp", "reason": "source_capacity"}
        wait_until(
            lambda: capped.metric("larm_gateway_refused_total", **labels) >= 46,
            timeout=5, what="46 datagrams dropped",
        )  # fmt: skip
        panel = dc09_alarm("9100", legit.dc09_key, 99)
        assert dc09_answer(dc09_exchange(capped, panel, udp=True)) == "ACK"
        lock.rollback()


def test_a_flood_of_malformed_messages_is_a_bounded_number_of_dead_letters(
    gw: GatewayStack, tmp_path: Path
) -> None:
    legit = Legit(gw, tmp_path)
    good = str(dc09_msg("6100").dc09block(1, "SIA-DCS", "#6100|NMA1]")).encode()
    damaged = good.replace(b"MA1", b"MA2")  # the CRC no longer matches
    with connect(gw, "sia-dc09") as flood:
        for i in range(200):
            flood.sendall(damaged)
            assert dc09_answer(read_until(flood, b"\r")) == "NAK"
            if i == 100:
                assert legit.round("sia-dc09")  # in the middle of it
    # Another address's refusal is still kept: the limit is per source.
    other = str(dc09_msg("5151").dc09block(1, "SIA-DCS", "#5151|NMA1]")).encode()
    assert dc09_answer(dc09_exchange(gw, other, source="127.0.0.3")) == "DUH"
    url = gw.settings.database_url
    sql = "SELECT count(*) FROM dead_letters WHERE topic = 'gateway/sia-dc09/5151'"
    wait_until(lambda: scalar(url, sql) == 1, timeout=5, what="the other source's dead letter")
    malformed = scalar(url, "SELECT count(*) FROM dead_letters WHERE reason = 'gateway.malformed'")
    assert malformed <= DEAD_LETTERS_PER_MINUTE + 1
    assert gw.result_count("sia-dc09", "malformed") == 200  # every one counted
    suppressed = gw.metric("larm_gateway_dead_letters_suppressed_total", protocol="sia-dc09")
    assert suppressed >= 200 - DEAD_LETTERS_PER_MINUTE - 1
