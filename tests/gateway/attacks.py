"""What the attack tests send and how they read the answers: raw SIP, DC-09 and SOS Access on
the gateway's real sockets, from a source address of their choosing (any 127.x.y.z reaches
the loopback listener, so one test has many "hosts"), and the legitimate device's round trip
with the public clients, to show it still gets through while the attack goes on."""

from __future__ import annotations

import hashlib
import re
import socket
import uuid
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dc09_spt.msg.dc05_msg import dc05_msg
from dc09_spt.msg.dc09_msg import dc09_msg
from sos_access.client import SOSAccessClient

from tests.gateway.conftest import GatewayStack

LEGIT = "127.0.0.1"
ATTACKER = "127.0.0.2"
PASSWORD = "Abcdefgh1234567"  # an SOS Access password: 15 characters


def connect(gw: GatewayStack, protocol: str, *, source: str = ATTACKER) -> socket.socket:
    s = socket.create_connection((gw.host, gw.port(protocol)), 5, source_address=(source, 0))
    s.settimeout(5)
    return s


def closed_by_peer(s: socket.socket, *, within: float) -> bool:
    """Whether the gateway closes this connection within `within` seconds (nothing read)."""
    s.settimeout(within)
    try:
        return s.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def read_until(s: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = s.recv(4096)
        assert chunk, "connection closed without an answer"
        data += chunk
    return data


# --- SIA DC-09 -----------------------------------------------------------------------------


def dc09_exchange(
    gw: GatewayStack, block: bytes, *, source: str = LEGIT, udp: bool = False
) -> bytes:
    if udp:
        with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as s:
            s.bind((source, 0))
            s.settimeout(5)
            s.sendto(block, (gw.host, gw.port("sia-dc09")))
            return s.recv(4096)
    with connect(gw, "sia-dc09", source=source) as s:
        s.sendall(block)
        return read_until(s, b"\r")


def dc09_answer(raw: bytes) -> str:
    """ACK, NAK or DUH (the ID token of an answer block, encrypted or not)."""
    match = re.search(rb'"\*?(ACK|NAK|DUH)"', raw)
    assert match, f"not a DC-09 answer: {raw!r}"
    return match[1].decode()


def dc09_alarm(account: str, key: str | None, seq: int) -> bytes:
    """A Contact ID medical alarm as the dc09-spt client writes it (encrypted with a key)."""
    msg = dc09_msg(account, key=bytes.fromhex(key) if key else None)
    return str(msg.dc09block(seq, "ADM-CID", dc05_msg.dc05event(account, {"code": "100"}))).encode()


# --- SOS Access ----------------------------------------------------------------------------


def sos_client(gw: GatewayStack, code: str, password: str = PASSWORD) -> SOSAccessClient:
    return SOSAccessClient(
        transmitter_code=code, transmitter_type="SV300", authentication=password,
        receiver_id="larmkedja", receiver_address=(gw.host, gw.port("sos-access")),
        use_single_receiver=True,
    )  # fmt: skip


def sos_request(code: str, password: str, reference: str = "r-1") -> bytes:
    return (
        '<?xml version="1.0" encoding="iso-8859-1"?>\n<alarmrequest>'
        f"<reference>{reference}</reference><authentication>{password}</authentication>"
        "<receiver>larmkedja</receiver><transmittertype>SV300</transmittertype>"
        f"<transmittercode>{code}</transmittercode><eventcode>MA</eventcode></alarmrequest>"
    ).encode("latin-1")


def sos_exchange(gw: GatewayStack, payload: bytes, *, source: str = LEGIT) -> bytes:
    with connect(gw, "sos-access", source=source) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


# --- SCAIP (SIP MESSAGE) ---------------------------------------------------------------------


def mrq(cid: str, ref: str, mty: str = "ME", stc: str = "10") -> str:
    return (
        f"<mrq><ref>{ref}</ref><cid>{cid}</cid><dty>3</dty><mty>{mty}</mty><stc>{stc}</stc></mrq>"
    )


@dataclass(frozen=True)
class SipAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def challenge(self) -> dict[str, str]:
        value = self.headers.get("www-authenticate", "")
        return {m[1]: m[2] or m[3] for m in re.finditer(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', value)}


def sip_message(
    gw: GatewayStack,
    cid: str,
    body: str,
    *,
    call_id: str | None = None,
    authorization: str | None = None,
    cseq: int = 1,
) -> bytes:
    uri = f"sip:alarm@{gw.host}:{gw.port('scaip')}"
    lines = [
        f"MESSAGE {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK{uuid.uuid4().hex[:12]}",
        f"From: <sip:{cid}@127.0.0.1>;tag=t{cseq}",
        f"To: <{uri}>",
        f"Call-ID: {call_id or uuid.uuid4().hex}",
        f"CSeq: {cseq} MESSAGE",
        "Content-Type: application/scaip+xml",
        *([f"Authorization: {authorization}"] if authorization else []),
        f"Content-Length: {len(body.encode())}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def sip_exchange(gw: GatewayStack, request: bytes, *, source: str = LEGIT) -> SipAnswer:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as s:
        s.bind((source, 0))
        s.settimeout(5)
        s.sendto(request, (gw.host, gw.port("scaip")))
        raw = s.recv(65535)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return SipAnswer(status=int(lines[0].split(" ")[1]), headers=headers, body=body)


def _md5(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


def digest(gw: GatewayStack, challenge: dict[str, str], cid: str, password: str, body: str) -> str:
    """An Authorization answering `challenge` (RFC 2617, qop auth-int) for this body."""
    uri = f"sip:alarm@{gw.host}:{gw.port('scaip')}"
    ha1 = _md5(f"{cid}:{challenge['realm']}:{password}")
    ha2 = _md5(f"MESSAGE:{uri}:{_md5(body.encode())}")
    cnonce, nc = uuid.uuid4().hex[:8], "00000001"
    response = _md5(f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth-int:{ha2}")
    return (
        f'Digest username="{cid}", realm="{challenge["realm"]}", nonce="{challenge["nonce"]}", '
        f'uri="{uri}", response="{response}", qop=auth-int, nc={nc}, cnonce="{cnonce}", '
        "algorithm=MD5"
    )


def scaip_login(
    gw: GatewayStack, cid: str, password: str, body: str, *, source: str = LEGIT
) -> SipAnswer:
    """A controller's whole round: challenged, then the MESSAGE with its credentials."""
    first = sip_exchange(gw, sip_message(gw, cid, body), source=source)
    assert first.status == 401, first
    authorization = digest(gw, first.challenge(), cid, password, body)
    request = sip_message(gw, cid, body, authorization=authorization, cseq=2)
    return sip_exchange(gw, request, source=source)


# --- the legitimate device, through the public clients -----------------------------------------


class Legit:
    """One registered device per protocol; `round` is one alarm of it, acknowledged or not."""

    def __init__(self, gw: GatewayStack, tmp_path: Path) -> None:
        self.gw = gw
        self.tmp_path = tmp_path
        self.dc09_key = str(gw.add("sia-dc09", "9100", "legit-dc09")["aes_key"])
        gw.add("sos-access", "LEGIT1", "legit-sos", secret=PASSWORD)
        self.scaip_password = str(gw.add("scaip", "9102", "legit-scaip")["password"])
        self.seq = 0

    def round(self, protocol: str) -> bool:
        self.seq += 1
        if protocol == "sia-dc09":
            block = dc09_alarm("9100", self.dc09_key, self.seq)
            return dc09_answer(dc09_exchange(self.gw, block)) == "ACK"
        if protocol == "sos-access":
            ref = f"legit-{self.seq}-{datetime.now(UTC):%H%M%S%f}"
            return (
                int(sos_client(self.gw, "LEGIT1").send_alarm(event_code="MA", reference=ref).status)
                == 0
            )
        body = mrq("9102", f"L{self.seq}")
        answer = scaip_login(self.gw, "9102", self.scaip_password, body)
        return answer.status == 200 and b"<snu>0</snu>" in answer.body
