"""SIA DC-09 over TCP and UDP, plain and AES, driven by the `dc09-spt` client from PyPI.

`dc09_spt.dc09_spt` is the client's own sender (a queue and a thread, retrying until ACK);
`transfer_msg` is its one-message exchange, used where a test needs the answer it got.
"""

from __future__ import annotations

import socket

import pytest
from dc09_spt.dc09_spt import dc09_spt
from dc09_spt.msg.dc05_msg import dc05_msg
from dc09_spt.msg.dc09_msg import dc09_msg

from tests.gateway.conftest import GatewayStack
from tests.helpers import wait_until

pytestmark = pytest.mark.integration
KEY = "000102030405060708090a0b0c0d0e0f"


def sender(
    gw: GatewayStack, account: str, *, key: str | None = None, udp: bool = False
) -> dc09_spt:
    spt = dc09_spt(account, receiver=1, line=1)
    spt.set_path(
        "main", "primary", gw.host, gw.port("sia-dc09"),
        key=bytes.fromhex(key) if key else None, type="udp" if udp else "tcp",
    )  # fmt: skip
    return spt


def drained(spt: dc09_spt) -> bool:
    return spt.notSent() == 0 and (spt.send is None or not spt.send.active())


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_sia_and_contact_id_alarms_and_a_link_test(gw: GatewayStack, udp: bool) -> None:
    gw.add("sia-dc09", "1234", "dc09-1", plain=True)
    spt = sender(gw, "1234", udp=udp)
    spt.send_msg("SIA-DCS", {"code": "MA", "zone": "3", "area": "1", "areaname": "Hall"})
    spt.send_msg("ADM-CID", {"code": "111", "zone": "7"})  # smoke
    spt.send_msg("SIA-DCS", {"code": "MH", "zone": "3"})  # medical restore
    wait_until(lambda: drained(spt), timeout=15, what="client queue sent")
    path = spt.tpaths["main"]["primary"]["path"]
    assert spt.transfer_msg(0, "NULL", "]", path)  # the client's link test, ACKed
    gw.wait_events("dc09-1", 4)
    assert gw.events("dc09-1", "alarm.button") == 1
    assert gw.events("dc09-1", "alarm.smoke") == 1
    assert gw.events("dc09-1", "alarm.cancel") == 1
    assert gw.events("dc09-1", "heartbeat") == 1
    wait_until(lambda: gw.open_alarms("dc09-1") == 2, timeout=10, what="two queue entries")
    assert gw.result_count("sia-dc09", "accepted") == 4


def test_encrypted_blocks_are_decrypted_and_answered_encrypted(gw: GatewayStack) -> None:
    gw.add("sia-dc09", "5678", "dc09-2", secret=KEY)
    spt = sender(gw, "5678", key=KEY)
    spt.send_msg("ADM-CID", {"code": "100", "zone": "1"})
    spt.send_msg("SIA-DCS", {"code": "AT"})  # mains lost
    wait_until(lambda: drained(spt), timeout=15, what="client queue sent")
    gw.wait_events("dc09-2", 2)
    assert gw.events("dc09-2", "alarm.button") == 1
    assert gw.events("dc09-2", "power.mains_lost") == 1
    # The answer was "*ACK" and decrypted by the client itself, which took our time from it.
    path = spt.tpaths["main"]["primary"]["path"]
    assert path.get_offset() is not None and abs(path.get_offset()) < 5


def test_an_encrypted_block_outside_the_time_window_gets_a_nak_with_our_time(
    gw: GatewayStack,
) -> None:
    gw.add("sia-dc09", "9999", "dc09-3", secret=KEY)
    late = dc09_msg("9999", key=bytes.fromhex(KEY), offset=-120)  # its clock 2 minutes behind
    block = late.dc09block(7, "ADM-CID", dc05_msg.dc05event("9999", {"code": "100"}))
    answer, offset = late.dc09answer(7, exchange(gw, block.encode()).decode())
    assert answer == "NAK"
    assert offset is not None and abs(offset) < 5  # the receiver's time, for the device to adopt
    late.set_offset(0)  # what the client does with it
    block = late.dc09block(7, "ADM-CID", dc05_msg.dc05event("9999", {"code": "100"}))
    answer, _ = late.dc09answer(7, exchange(gw, block.encode()).decode())
    assert answer == "ACK"
    gw.wait_events("dc09-3", 1)
    assert gw.events("dc09-3") == 1
    assert gw.result_count("sia-dc09", "time_rejected") == 1


def test_unknown_account_wrong_key_and_plain_text_from_an_encrypting_account_get_duh(
    gw: GatewayStack,
) -> None:
    gw.add("sia-dc09", "4321", "dc09-4", secret=KEY)
    unknown = dc09_msg("1111").dc09block(1, "SIA-DCS", "#1111|NMA1]")
    assert dc09_msg("1111").dc09answer(1, exchange(gw, unknown.encode()).decode())[0] == "DUH"
    wrong = dc09_msg("4321", key=bytes(range(16, 32)))
    block = wrong.dc09block(2, "ADM-CID", dc05_msg.dc05event("4321", {"code": "100"}))
    assert wrong.dc09answer(2, exchange(gw, block.encode()).decode())[0] == "DUH"
    plain = dc09_msg("4321").dc09block(3, "SIA-DCS", "#4321|NMA1]")
    assert dc09_msg("4321").dc09answer(3, exchange(gw, plain.encode()).decode())[0] == "DUH"
    wait_until(lambda: gw.dead_letters("unknown_sender") == 1, timeout=5, what="dead letter")
    wait_until(lambda: gw.dead_letters("undecryptable") == 1, timeout=5, what="dead letter")
    wait_until(lambda: gw.dead_letters("not_authorized") == 1, timeout=5, what="dead letter")
    assert gw.events("dc09-4") == 0


def test_damaged_blocks_get_a_nak_and_the_connection_goes_on(gw: GatewayStack) -> None:
    gw.add("sia-dc09", "2468", "dc09-5", plain=True)
    good = dc09_msg("2468").dc09block(5, "SIA-DCS", "#2468|NFA2]").encode()
    damaged = good.replace(b"FA2", b"FA3")  # CRC no longer matches
    with socket.create_connection((gw.host, gw.port("sia-dc09")), timeout=5) as s:
        s.sendall(damaged)
        first = read_block(s)
        s.sendall(b"line noise" + good)
        second = read_block(s)
    assert dc09_msg("2468").dc09answer(5, first.decode())[0] == "NAK"
    assert dc09_msg("2468").dc09answer(5, second.decode())[0] == "ACK"
    gw.wait_events("dc09-5", 1)
    assert gw.events("dc09-5", "alarm.smoke") == 1
    wait_until(lambda: gw.dead_letters("malformed") == 1, timeout=5, what="dead letter")


def test_a_retransmitted_block_is_one_event(gw: GatewayStack) -> None:
    gw.add("sia-dc09", "1357", "dc09-6", plain=True)
    block = dc09_msg("1357").dc09block(9, "SIA-DCS", "#1357|NMA1]").encode()
    for _ in range(3):  # the ACK was lost twice; the panel sends the same block again
        assert b'"ACK"' in exchange(gw, block)
    gw.wait_events("dc09-6", 1)
    wait_until(lambda: gw.open_alarms("dc09-6") == 1, timeout=10, what="one queue entry")
    assert gw.events("dc09-6") == 1


def exchange(gw: GatewayStack, block: bytes) -> bytes:
    with socket.create_connection((gw.host, gw.port("sia-dc09")), timeout=5) as s:
        s.sendall(block)
        return read_block(s)


def read_block(s: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r"):
        chunk = s.recv(1024)
        assert chunk, "connection closed without an answer"
        data += chunk
    return data
