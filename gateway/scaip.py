"""SCAIP (SS 91100, CLC/TS 50134-9): the `<mrq>` request in a SIP MESSAGE, the `<mrs>` answer.

Pure. The request carries a reference (`ref`), the controller (`cid`), the device type
(`dty`), device id and component (`did`, `dco`), the message type (`mty`: ME message /
alarm, RE reset, IN information, PI heartbeat), a status code (`stc`), priority and location.
The answer carries `ref`, a status number (`snu`: 0 ok, 1 too long, 2 invalid format,
3 wrong data content, 4 hold, 5 not treated, 6 busy, 7 mandatory tag missing), a text and
the heartbeat interval the receiver wants (`hbi`).
"""

from __future__ import annotations

import enum
import re
import xml.etree.ElementTree as ET  # builds answers; parsing is defused
from dataclasses import dataclass

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from gateway.errors import ProtocolError
from gateway.model import Translated
from larmkedja.events import Kind

CONTENT_TYPE = "application/scaip+xml"
MAX_BYTES = 4096


class Snu(enum.IntEnum):
    OK = 0
    MESSAGE_TOO_LONG = 1
    INVALID_FORMAT = 2
    WRONG_DATA_CONTENT = 3
    HOLD = 4
    NOT_TREATED = 5
    BUSY = 6
    MANDATORY_TAG_MISSING = 7


# The schema's patterns for the request elements we read (SS 91100 XSD).
PATTERNS: dict[str, re.Pattern[str]] = {
    "ref": re.compile(r"[0-9a-zA-Z]{1,16}"),
    "cid": re.compile(r"[0-9]{1,16}"),
    "dty": re.compile(r"[0-9]{1,4}"),
    "mty": re.compile(r"ME|RE|IN|PI"),
    "stc": re.compile(r"[0-9]{1,4}"),
    "did": re.compile(r".{1,8}"),
    "dco": re.compile(r"[0-9]{1,3}"),
    "pri": re.compile(r"[0-9]"),
    "lco": re.compile(r"[0-9]{1,3}"),
    "ver": re.compile(r"[0-9]{2}\.[0-9]{2}"),
    "hbo": re.compile(r"[0-3]"),
}
MANDATORY = ("ref", "cid", "dty")

# Heartbeat intervals by `hbi` code: SS 91100's schema allows one digit 0-4; we read them as
# "none" and the four SOS service levels (90 s, 180 s, 5 h, 25 h). docs/protocols.md.
HBI_SECONDS = {0: None, 1: 90.0, 2: 180.0, 3: 5 * 3600.0, 4: 25 * 3600.0}


def hbi_for(seconds: float | None) -> int:
    """The `hbi` code of the shortest service level that is at least `seconds`."""
    if not seconds:
        return 0
    for code in (1, 2, 3, 4):
        period = HBI_SECONDS[code]
        if period is not None and seconds <= period:
            return code
    return 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Mrq:
    fields: dict[str, str]

    @property
    def ref(self) -> str:
        return self.fields["ref"]

    @property
    def cid(self) -> str:
        return self.fields["cid"]

    @property
    def mty(self) -> str:
        return self.fields.get("mty", "ME")


def fail(snu: Snu, message: str) -> ProtocolError:
    return ProtocolError(message, code=str(int(snu)))


def parse(body: bytes) -> Mrq:
    """Parse and check an `<mrq>`; a ProtocolError's code is the `snu` to answer with."""
    if len(body) > MAX_BYTES:
        raise fail(Snu.MESSAGE_TOO_LONG, f"request longer than {MAX_BYTES} bytes")
    try:
        root = SafeET.fromstring(body)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise fail(Snu.INVALID_FORMAT, f"not well-formed XML: {exc}") from None
    if root.tag != "mrq":
        raise fail(Snu.INVALID_FORMAT, f"root element is <{root.tag[:20]}>, not <mrq>")
    fields = {c.tag: (c.text or "").strip() for c in root if len(c) == 0 and (c.text or "")}
    fields = {k: v for k, v in fields.items() if v}
    missing = [name for name in MANDATORY if name not in fields]
    if missing:
        raise fail(Snu.MANDATORY_TAG_MISSING, "mandatory tag missing: " + ", ".join(missing))
    for name, pattern in PATTERNS.items():
        if name in fields and not pattern.fullmatch(fields[name]):
            raise fail(Snu.WRONG_DATA_CONTENT, f"<{name}> has a value the schema does not allow")
    return Mrq(fields=fields)


def reference_of(body: bytes) -> str:
    """The `ref` of a request that did not parse, to echo in the answer ('0' if none)."""
    match = re.search(rb"<ref>\s*([0-9a-zA-Z]{1,16})\s*</ref>", body)
    return match.group(1).decode() if match else "0"


# Status codes (stc) -> kinds. Numbers as the SS 91100 status code table has them.
ALARM_STATUS = {9, 10, 11, 106, 107, 110}  # automatic/manual alarm, alert, intrusion, assistance
CANCEL_STATUS = {19, 88, 92, 93, 94, 111}  # cancel, presence, resets, restoral, intervention
STATUS_KINDS: dict[int, Kind] = {
    14: Kind.BATTERY_LOW,  # battery failure
    16: Kind.BATTERY_LOW,  # battery low
    85: Kind.POWER_MAINS_LOST,  # power failure
    86: Kind.POWER_MAINS_RESTORED,  # power restored
    125: Kind.TAMPER,  # tamper alarm
    102: Kind.HEARTBEAT,  # test transmission, primary channel
    103: Kind.HEARTBEAT,  # test transmission, redundant channel
    **{code: Kind.LINK_LOST for code in (23, 24, 25, 26, 27, 123)},
    **{code: Kind.LINK_RESTORED for code in (112, 113, 114, 115, 116, 124)},
}
# Device types (dty) -> the alarm kind their alarms are.
DEVICE_ALARMS: dict[int, Kind] = {
    5: Kind.ALARM_FALL,  # fall detector
    30: Kind.ALARM_FALL,  # automatic man-down detector
    12: Kind.ALARM_BED_EXIT,  # bed monitor
    13: Kind.ALARM_BED_EXIT,  # mat sensor
    14: Kind.ALARM_DOOR,  # door sensor
    15: Kind.ALARM_DOOR,  # wandering sensor
    10: Kind.ALARM_NO_ACTIVITY,  # activity detector
    18: Kind.ALARM_NO_ACTIVITY,  # occupancy detector
    21: Kind.ALARM_SMOKE,  # gas
    23: Kind.ALARM_SMOKE,  # smoke
    25: Kind.ALARM_SMOKE,  # heat
    26: Kind.ALARM_SMOKE,  # carbon monoxide
    2: Kind.ALARM_BUTTON,  # local unit and controller
    3: Kind.ALARM_BUTTON,  # personal trigger
    4: Kind.ALARM_BUTTON,  # fixed trigger
    6: Kind.ALARM_BUTTON,  # personal attack trigger
    7: Kind.ALARM_BUTTON,  # panic button
    48: Kind.ALARM_BUTTON,  # local unit
}


def kind_of(mrq: Mrq) -> Kind:
    """The contract kind of a request (docs/protocols.md has the table)."""
    mty = mrq.mty
    stc = int(mrq.fields.get("stc", "10" if mty == "ME" else "0"))
    dty = int(mrq.fields["dty"])
    if mty == "PI":
        return Kind.HEARTBEAT
    if mty == "RE" or stc in CANCEL_STATUS:
        return Kind.ALARM_CANCEL
    if stc in STATUS_KINDS:
        return STATUS_KINDS[stc]
    if stc in ALARM_STATUS:
        return DEVICE_ALARMS.get(dty, Kind.ALARM_OTHER)
    # Anything else: a message (ME) may be an alarm we do not know, so an operator sees it;
    # information (IN) proves the device is alive and keeps its code in `data`.
    return Kind.ALARM_OTHER if mty == "ME" else Kind.HEARTBEAT


def translate(mrq: Mrq, *, heartbeat_s: float | None) -> Translated:
    kind = kind_of(mrq)
    f = mrq.fields
    data: dict[str, object] = {"protocol": "scaip", "mty": mrq.mty}
    data |= {k: f[k] for k in ("stc", "dty", "did", "dco", "pri", "lco") if k in f}
    if kind.is_alarm:
        data["component"] = f"device type {f['dty']}" + (f", id {f['did']}" if "did" in f else "")
    if mrq.mty == "PI" and f.get("hbo", "0") != "0" and heartbeat_s:
        # An adjustable device takes the interval we answer with; otherwise its registered
        # period (or the default) applies.
        data["interval_s"] = HBI_SECONDS[hbi_for(heartbeat_s)]
    marks = [f.get(k, "") for k in ("mty", "stc", "dty", "did", "dco")]
    return Translated(kind=kind, data=data, identity="\x1f".join([mrq.ref, *marks]))


def answer(ref: str, snu: Snu, text: str = "", *, hbi: int | None = None) -> bytes:
    """The `<mrs>` answer: the request's reference, the status, a text and `hbi`."""
    element = ET.Element("mrs")
    ET.SubElement(element, "ref").text = ref
    ET.SubElement(element, "snu").text = str(int(snu))
    if text:
        ET.SubElement(element, "ste").text = text[:128]
    if hbi is not None:
        ET.SubElement(element, "hbi").text = str(hbi)
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        + ET.tostring(element, encoding="unicode").encode()
    )
