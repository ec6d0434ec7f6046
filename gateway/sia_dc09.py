"""SIA DC-09 (ANSI/SIA DC-09-2013): framing, AES, SIA-DCS and ADM-CID payloads, ACK/NAK/DUH.

Pure: bytes in, bytes out, time as a parameter. A block on the wire:

    LF  CRC(4 hex)  LEN(4 hex)  "ID"SEQ[Rrcvr][Lline]#acct[data...]  CR

CRC-16 (poly 0xA001, reflected, init 0) and LEN cover the part from the first `"` to before
the CR. `ID` is `SIA-DCS`, `ADM-CID` or `NULL` (a link test); a leading `*` (`"*SIA-DCS"`)
means the part after `[` is AES-CBC (zero IV) in hex, holding padding, `|`, the data and a
timestamp `_HH:MM:SS,MM-DD-YYYY` (UTC), which the receiver checks against its clock.
"""

from __future__ import annotations

import functools
import re
import secrets
import string
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

import crcmod
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gateway.codes import SIA_RESTORES, cid_alarm_kind, cid_kind, sia_kind
from gateway.errors import ProtocolError
from gateway.framing import cut
from gateway.model import Translated
from larmkedja.events import Kind

MAX_BLOCK = 1024
# DC-09-2013 5.5.1.8: an encrypted message more than 20 s ahead of or 40 s behind the
# receiver's clock is refused with a NAK carrying the receiver's time.
FUTURE_S = 20.0
PAST_S = 40.0

_CONTENT = re.compile(
    r'^"(?P<star>\*?)(?P<token>[A-Z0-9-]{3,12})"(?P<seq>[0-9A-F]{4})'
    r"(?:R(?P<rcv>[0-9A-F]{1,6}))?(?:L(?P<line>[0-9A-F]{1,6}))?"
    r"#(?P<acct>[0-9A-Za-z]{1,16})\[(?P<data>.*)$",
    re.DOTALL,
)
_TIMESTAMP = re.compile(r"_(\d\d):(\d\d):(\d\d),(\d\d)-(\d\d)-(\d{4})$")
_NAME = re.compile(r"\^[^^]*\^")
_MODIFIER = re.compile(r"^(?:ri\d+|id\d+|pi\d+|ti\d\d:\d\d(?::\d\d)?)")
_SIA_EVENT = re.compile(r"^([A-Z]{2})(\d{0,4})")
_CID = re.compile(r"^([136])(\d{3}) ([0-9A-F]{2}) ([0-9A-F]{3})$")
_PRINTABLE = re.compile(rb"[\x20-\x7e]+")
_WRONG_KEY = "does not decrypt with this account's key"
_PAD_CHARS = "".join(c for c in string.printable[:94] if c not in "[]|")


class Block(NamedTuple):
    """A block's header and its data (a tuple: made for every block, so cheap to make)."""

    mtype: str  # the ID token: SIA-DCS, ADM-CID or NULL
    encrypted: bool
    seq: str
    receiver: str | None
    line: str | None
    account: str
    data: str  # everything after the `[`: plain data, or the encrypted part in hex


class Opened(NamedTuple):
    """The readable content of a block: the data up to `]`, extras, the device's time (and
    that time as `str(timestamp)` writes it, part of the event's identity: made from the
    block's own digits, not formatted again)."""

    body: str
    timestamp: datetime | None
    stamp_text: str | None = None


# CRC-16/ARC (poly 0x8005 reflected, init 0, no final XOR), as DC-07 specifies for DC-09
# blocks: crcmod's C extension, two per block (the pure-Python table took ~8% of the
# gateway's CPU in the profile of the bench's gateway part).
crc16: Callable[[bytes], int] = crcmod.mkCrcFun(0x18005, initCrc=0, rev=True, xorOut=0)


def take_frame(buffer: bytearray) -> bytes | None:
    """Remove and return the next whole block from a stream buffer (None: need more bytes).
    Bytes before a block's LF are line noise and dropped; a bad header raises."""
    start = buffer.find(b"\n")
    if start < 0:
        buffer.clear()
        return None
    del buffer[:start]
    if len(buffer) < 9:
        return None
    try:
        length = int(buffer[5:9], 16)
    except ValueError:
        del buffer[:1]
        raise ProtocolError("block length is not hex", code="length") from None
    end = 9 + length + 1
    if end > MAX_BLOCK:
        del buffer[:1]
        raise ProtocolError("block too long", code="length")
    return cut(buffer, end)


def parse_block(frame: bytes) -> Block:
    """Check a whole block (LF ... CR) and split its header."""
    if len(frame) < 11 or frame[:1] != b"\n" or frame[-1:] != b"\r":
        raise ProtocolError("not a DC-09 block (LF ... CR)", code="format")
    content = frame[9:-1]
    try:
        crc, length = int(frame[1:5], 16), int(frame[5:9], 16)
    except ValueError:
        raise ProtocolError("CRC or length is not hex", code="format") from None
    if length != len(content):
        raise ProtocolError(f"length says {length}, block has {len(content)}", code="length")
    if crc != crc16(content):
        raise ProtocolError("CRC mismatch", code="crc")
    match = _CONTENT.match(content.decode("latin-1"))
    if match is None:
        raise ProtocolError("header does not parse", code="format")
    return Block(
        mtype=match["token"],
        encrypted=bool(match["star"]),
        seq=match["seq"],
        receiver=match["rcv"],
        line=match["line"],
        account=match["acct"],
        data=match["data"],
    )


def _aes(key: bytes) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(key), modes.CBC(bytes(16)))


def open_block(block: Block, *, key: bytes | None) -> Opened:
    """The data of a block, decrypted with the sender's key when it is encrypted."""
    if block.encrypted:
        if key is None:
            raise ProtocolError("encrypted block, no key for this account", code="key")
        try:
            cipher = bytes.fromhex(block.data)
        except ValueError:
            raise ProtocolError("encrypted part is not hex", code="format") from None
        if not cipher or len(cipher) % 16:
            raise ProtocolError("encrypted part is not whole AES blocks", code="format")
        decryptor = _aes(key).decryptor()
        text = _after_padding(decryptor.update(cipher) + decryptor.finalize())
    else:
        text = block.data
    stamp = _TIMESTAMP.search(text)
    timestamp = stamp_text = None
    if stamp is not None:
        hh, mi, ss, mo, dd, yyyy = stamp.groups()
        try:
            timestamp = datetime(int(yyyy), int(mo), int(dd), int(hh), int(mi), int(ss), 0, UTC)
        except ValueError:
            raise ProtocolError("timestamp is not a time", code="format") from None
        stamp_text = f"{yyyy}-{mo}-{dd} {hh}:{mi}:{ss}+00:00"
        text = text[: stamp.start()]
    elif block.encrypted:
        raise ProtocolError(_WRONG_KEY, code="key")  # see _after_padding
    close = text.find("]")
    if close < 0:
        raise ProtocolError("data has no closing ]", code="format")
    return Opened(body=text[:close], timestamp=timestamp, stamp_text=stamp_text)


def _after_padding(plain: bytes) -> str:
    """The data after the padding's `|`; a wrong key gives bytes that are not that.

    With the right key everything after the `|` is printable ASCII and ends in the timestamp
    DC-09 requires of an encrypted block (the padding before it may be any byte but `|`:
    dc09-spt pads with control characters). Garbage from a wrong key holds a `|` and a `]`
    often enough (a few per cent of blocks) that looking for those alone took it for a damaged
    payload, and a `|` near its end leaves a few bytes that are printable by chance (about one
    block in 200); a timestamp by chance, never. So `open_block` refuses an encrypted block
    without a timestamp as undecryptable too: DUH either way, only the dead letter's reason
    differs.
    """
    bar = plain.find(b"|")
    data = plain[bar + 1 :]
    if bar < 0 or not _PRINTABLE.fullmatch(data):
        raise ProtocolError(_WRONG_KEY, code="key")
    return data.decode()


def in_window(timestamp: datetime | None, *, now: datetime) -> bool:
    if timestamp is None:
        return False
    offset = (timestamp - now).total_seconds()
    return -PAST_S <= offset <= FUTURE_S


def translate(block: Block, opened: Opened) -> list[Translated]:
    """Contract messages of a block; a NULL block is a link test (a heartbeat)."""
    base = f"{block.seq}\x1f{block.mtype}\x1f{opened.body}"
    exact = opened.timestamp is not None
    if exact:
        base += f"\x1f{opened.stamp_text or opened.timestamp}"
    if block.mtype == "NULL":
        return [
            Translated(
                kind=Kind.HEARTBEAT,
                data={"protocol": "sia-dc09", "code": "NULL"},
                ts=opened.timestamp,
                identity=base,
                exact=exact,
            )
        ]
    _, sep, payload = opened.body.partition("|")
    if not sep:
        raise ProtocolError("data has no account|event", code="format")
    if block.mtype == "ADM-CID":
        events = [_cid_event(payload)]
    elif block.mtype == "SIA-DCS":
        events = _sia_events(payload)
    else:
        raise ProtocolError(f"unsupported message type {block.mtype}", code="type")
    return [
        Translated(
            kind=kind, data=data, ts=opened.timestamp, identity=f"{base}\x1f{i}", exact=exact
        )
        for i, (kind, data) in enumerate(events)
    ]


Event = tuple[Kind, dict[str, object]]


def _cid_event(payload: str) -> Event:
    match = _CID.match(payload)
    if match is None:
        raise ProtocolError("Contact ID event does not parse", code="format")
    qualifier, code, area, zone = match.groups()
    kind = cid_kind(qualifier, code)
    data: dict[str, object] = {"protocol": "sia-dc09", "code": f"{qualifier}{code}"}
    data |= {"area": area, "zone": zone}
    return kind, _with_alarm_details(kind, data, zone, cid_alarm_kind(code))


def _sia_events(payload: str) -> list[Event]:
    if payload.startswith("A"):  # a text-only message: proves life, says nothing else
        return [(Kind.HEARTBEAT, {"protocol": "sia-dc09", "code": "A"})]
    if not payload.startswith("N"):
        raise ProtocolError("SIA data does not start with N", code="format")
    events: list[Event] = []
    area = ""
    for segment in payload[1:].split("/"):
        text = (_NAME.sub("", segment) if "^" in segment else segment).split("|", 1)[0]
        while (modifier := _MODIFIER.match(text)) is not None:
            if modifier.group().startswith("ri"):
                area = modifier.group()[2:]
            text = text[modifier.end() :]
        match = _SIA_EVENT.match(text)
        if match is None:
            continue
        code, zone = match.groups()
        kind = sia_kind(code)
        data: dict[str, object] = {"protocol": "sia-dc09", "code": code}
        data |= {k: v for k, v in (("area", area), ("zone", zone)) if v}
        events.append((kind, _with_alarm_details(kind, data, zone, SIA_RESTORES.get(code))))
    if not events:
        raise ProtocolError("no SIA event code in the data", code="format")
    return events


def _with_alarm_details(
    kind: Kind, data: dict[str, object], zone: str, restores: Kind | None
) -> dict[str, object]:
    if kind.is_alarm and zone:
        data["component"] = f"zone {zone}"
    if kind is Kind.ALARM_CANCEL and restores is not None:
        data["alarm_kind"] = restores.value
    return data


# --- answers --------------------------------------------------------------------------


def _stamp(now: datetime) -> str:
    if now.tzinfo is not UTC:
        now = now.astimezone(UTC)
    return _stamp_of(now.hour, now.minute, now.second, now.month, now.day, now.year)


@functools.lru_cache(maxsize=4)
def _stamp_of(hh: int, mi: int, ss: int, mo: int, dd: int, yyyy: int) -> str:
    """Formatted once a second, not once an answer (formatting was most of an ACK's cost)."""
    return f"_{hh:02}:{mi:02}:{ss:02},{mo:02}-{dd:02}-{yyyy}"


def _frame(content: str) -> bytes:
    raw = content.encode("latin-1")
    return b"\n" + f"{crc16(raw):04X}{len(raw):04X}".encode() + raw + b"\r"


def _encrypted(body: str, key: bytes) -> str:
    """`body` behind random padding to whole AES blocks, encrypted, in upper-case hex."""
    pad = "".join(secrets.choice(_PAD_CHARS) for _ in range((-len(body)) % 16 or 16))
    encryptor = _aes(key).encryptor()
    cipher = encryptor.update((pad + body).encode("latin-1")) + encryptor.finalize()
    return cipher.hex().upper()


def _route(block: Block) -> str:
    return f"R{block.receiver or '0'}L{block.line or '0'}"


def ack(block: Block, *, now: datetime, key: bytes | None) -> bytes:
    """Positive acknowledgement, encrypted when the block was (with padding and time)."""
    head = f"{block.seq}{_route(block)}#{block.account}["
    if not block.encrypted or key is None:
        return _frame(f'"ACK"{head}]{_stamp(now)}')
    return _frame(f'"*ACK"{head}{_encrypted("|]" + _stamp(now), key)}')


def nak(*, now: datetime) -> bytes:
    """Negative acknowledgement: never encrypted, carries the receiver's time."""
    return _frame(f'"NAK"0000R0L0A0[]{_stamp(now)}')


def duh(block: Block) -> bytes:
    """The receiver cannot process an otherwise well received block."""
    return _frame(f'"DUH"{block.seq}{_route(block)}#{block.account}[]')


def sender_block(
    *, account: str, seq: int, data: str, now: datetime, key: bytes | None = None
) -> bytes:
    """A SIA-DCS block as a transmitter sends it (the simulators' and tests' side): `data` is
    what goes between `[` and `]`, e.g. `#1234|NBA1`; with a key it is encrypted and
    time-stamped, as DC-09 asks of an encrypted block."""
    head = f"{seq:04d}R1L1#{account}["
    if key is None:
        return _frame(f'"SIA-DCS"{head}{data}]{_stamp(now)}')
    return _frame(f'"*SIA-DCS"{head}{_encrypted(f"|{data}]{_stamp(now)}", key)}')
