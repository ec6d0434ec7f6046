"""SOS Access v4: XML over TCP, one request and one response per connection.

Pure: bytes in, bytes out. Requests are `<alarmrequest>` (an alarm, `alarmtype` AL, or its
restore, RE), `<pingrequest>` (a heartbeat) and `<requestnewauthentication>`; every one is
answered with its `...response` carrying the protocol's status code. ISO 8859-1 throughout.
"""

from __future__ import annotations

import enum
import re
import xml.etree.ElementTree as ET  # builds responses; parsing is defused
from dataclasses import dataclass
from datetime import UTC, datetime

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from gateway.codes import SIA_RESTORES, cid_alarm_kind, cid_kind, sia_kind
from gateway.errors import ProtocolError
from gateway.model import Translated
from larmkedja.events import Kind

MAX_BYTES = 10_000
ENCODING = "iso-8859-1"


class Status(enum.IntEnum):
    OK = 0
    INVALID_LENGTH = 1
    INVALID_XML = 2
    WRONG_CONTENT = 3
    NOT_AUTHORIZED = 4
    NOT_TREATED = 5
    MANDATORY_MISSING = 7
    SERVICE_UNAVAILABLE = 9
    DUPLICATE_ALARM = 10
    SYSTEM_ERROR = 98
    OTHER_ERROR = 99
    XML_HEADER = 100
    PING_TOO_OFTEN = 101


ROOTS = {
    "alarmrequest": "alarmresponse",
    "pingrequest": "pingresponse",
    "requestnewauthentication": "requestnewauthenticationresponse",
}
_END = re.compile(rb"</\s*(alarmrequest|pingrequest|requestnewauthentication)\s*>")

# Field -> (min, max) length, as the v4 specification (and the public client) have them.
LENGTHS: dict[str, tuple[int, int]] = {
    "reference": (1, 50),
    "authentication": (15, 15),
    "receiver": (1, 20),
    "transmittertype": (5, 5),
    "transmittercode": (1, 15),
    "transmitterarea": (1, 5),
    "eventcode": (1, 25),
    "section": (1, 5),
    "sectiontext": (1, 40),
    "detector": (1, 5),
    "detectortext": (1, 40),
    "additionalinfo": (1, 2000),
    "alarmtype": (2, 2),
    "transmittertime": (1, 40),
}
MANDATORY = {
    "alarmrequest": (
        "authentication",
        "receiver",
        "transmittertype",
        "transmittercode",
        "eventcode",
    ),
    "pingrequest": ("authentication", "transmittercode", "transmittertype"),
    "requestnewauthentication": ("authentication", "transmittercode", "transmittertype"),
}

# Event codes in plain words some transmitters send (checked after SIA and Contact ID).
ALIASES: dict[str, Kind] = {
    "FALL": Kind.ALARM_FALL,
    "BED": Kind.ALARM_BED_EXIT,
    "DOOR": Kind.ALARM_DOOR,
    "SMOKE": Kind.ALARM_SMOKE,
    "FIRE": Kind.ALARM_SMOKE,
    "INACTIVITY": Kind.ALARM_NO_ACTIVITY,
    "ALARM": Kind.ALARM_BUTTON,
    "SOS": Kind.ALARM_BUTTON,
    "PANIC": Kind.ALARM_BUTTON,
    "BUTTON": Kind.ALARM_BUTTON,
}


def failure(status: Status, message: str) -> ProtocolError:
    return ProtocolError(message, code=str(int(status)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    root: str  # alarmrequest / pingrequest / requestnewauthentication
    fields: dict[str, str]

    @property
    def transmitter(self) -> str:
        return self.fields["transmittercode"]

    @property
    def reference(self) -> str | None:
        return self.fields.get("reference")


def is_complete(buffer: bytes) -> bool:
    """A whole request has arrived (its root element is closed)."""
    return _END.search(buffer) is not None


def response_root(raw: bytes) -> str:
    """The response element for a request, guessed from its bytes when it does not parse."""
    for request, answer in ROOTS.items():
        if f"<{request}".encode() in raw:
            return answer
    return "alarmresponse"


def parse(raw: bytes) -> Request:
    """Parse and check a request; a ProtocolError's code is the status to answer with."""
    if len(raw) > MAX_BYTES:
        raise failure(Status.INVALID_LENGTH, f"request longer than {MAX_BYTES} bytes")
    if not raw.lstrip().startswith(b"<?xml"):
        raise failure(Status.XML_HEADER, "no XML header")
    try:
        root = SafeET.fromstring(raw.decode(ENCODING))
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise failure(Status.INVALID_XML, f"not well-formed XML: {exc}") from None
    if root.tag not in ROOTS:
        raise failure(Status.WRONG_CONTENT, f"unknown request <{root.tag[:40]}>")
    fields = {child.tag: (child.text or "").strip() for child in root if len(child) == 0}
    position = root.find("position/pos")
    if position is not None and position.text:
        fields["position"] = position.text.strip()
    fields = {k: v for k, v in fields.items() if v}
    missing = [name for name in MANDATORY[root.tag] if name not in fields]
    if missing:
        raise failure(Status.MANDATORY_MISSING, "mandatory tag missing: " + ", ".join(missing))
    for name, value in fields.items():
        low, high = LENGTHS.get(name, (0, 2000))
        if not low <= len(value) <= high:
            raise failure(Status.WRONG_CONTENT, f"<{name}> must be {low}..{high} characters")
    if fields.get("alarmtype", "AL") not in ("AL", "RE"):
        raise failure(Status.WRONG_CONTENT, "<alarmtype> must be AL or RE")
    if "transmittertime" in fields and device_time(fields["transmittertime"]) is None:
        raise failure(Status.WRONG_CONTENT, "<transmittertime> is not an ISO 8601 time")
    return Request(root=root.tag, fields=fields)


def device_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def alarm_kind(event_code: str, *, restore: bool) -> tuple[Kind, Kind | None]:
    """The kind of an alarm request and, for a restore, the alarm kind it cancels."""
    code = event_code.strip().upper()
    if len(code) == 3 and code.isdigit():
        kind = cid_kind("3" if restore else "1", code)
        return kind, cid_alarm_kind(code) if kind is Kind.ALARM_CANCEL else None
    if len(code) == 2 and code.isalpha():
        new = sia_kind(code)
    else:
        new = ALIASES.get(code, Kind.ALARM_OTHER)
    if not restore:
        return new, None
    if code in SIA_RESTORES:
        return Kind.ALARM_CANCEL, SIA_RESTORES[code]
    return _restore_of(new)


def _restore_of(new: Kind) -> tuple[Kind, Kind | None]:
    if new is Kind.POWER_MAINS_LOST:
        return Kind.POWER_MAINS_RESTORED, None
    if new is Kind.LINK_LOST:
        return Kind.LINK_RESTORED, None
    if new.is_alarm or new is Kind.ALARM_CANCEL:
        return Kind.ALARM_CANCEL, new if new.is_alarm else None
    return Kind.HEARTBEAT, None  # battery, tamper restored: the device is alive


def translate(request: Request) -> Translated:
    """An alarm request or a ping in contract terms (not the password-change request)."""
    f = request.fields
    if request.root == "pingrequest":
        return Translated(kind=Kind.HEARTBEAT, data={"protocol": "sos-access"})
    restore = f.get("alarmtype", "AL") == "RE"
    kind, cancels = alarm_kind(f["eventcode"], restore=restore)
    data: dict[str, object] = {"protocol": "sos-access", "code": f["eventcode"]}
    data |= {k: f[k] for k in ("transmitterarea", "section", "detector") if k in f}
    if kind.is_alarm:
        parts = [f"{k} {f[k]}" for k in ("section", "detector") if k in f]
        if parts:
            data["component"] = ", ".join(parts)
    if cancels is not None:
        data["alarm_kind"] = cancels.value
    when = device_time(f.get("transmittertime", ""))
    aware = when is not None and when.tzinfo is not None
    marks = [f.get(k, "") for k in ("alarmtype", "eventcode", "section", "detector")]
    identity = None
    if request.reference or aware:
        identity = "\x1f".join([request.reference or "", *marks, f.get("transmittertime", "")])
    return Translated(
        kind=kind, data=data, ts=when if aware else None, identity=identity, exact=aware
    )


def response(
    root: str, status: Status, info: str, *, reference: str | None, now: datetime
) -> bytes:
    """An answer element with the status, a short text and the time it arrived."""
    element = ET.Element(root)
    if reference:
        ET.SubElement(element, "reference").text = reference[:50]
    ET.SubElement(element, "status").text = str(int(status))
    ET.SubElement(element, "info").text = (info or status.name)[:255]
    # ISO 8601, which is what the public client parses (see docs/protocols.md).
    stamp = now.astimezone(UTC).replace(microsecond=0).isoformat()
    ET.SubElement(element, "arrivaltime").text = stamp
    body = ET.tostring(element, encoding="unicode")
    text = f'<?xml version="1.0" encoding="{ENCODING}"?>\n{body}'
    return text.encode(ENCODING, "xmlcharrefreplace")
