"""Just enough SIP (RFC 3261) for a receiver of MESSAGE requests over UDP and TCP.

Pure. Parses a request (start line, headers with their compact forms, a body framed by
Content-Length) and builds the stateless responses a MESSAGE or OPTIONS gets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from gateway.errors import ProtocolError
from gateway.framing import cut

MAX_MESSAGE = 8192
COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "l": "content-length",
    "c": "content-type",
    "m": "contact",
}
# The headers a response copies from its request (RFC 3261 8.2.6.2).
COPIED = ("via", "from", "to", "call-id", "cseq")
REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    500: "Server Internal Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    method: str
    uri: str
    headers: list[tuple[str, str]]  # (lower-case full name, value), in order
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def user(self) -> str | None:
        """The user part of the From URI (`sip:26317@host` -> `26317`)."""
        value = self.header("from") or ""
        start = value.find("sip:")
        if start < 0:
            return None
        user = value[start + 4 :].split("@", 1)
        return user[0] if len(user) == 2 else None


def _parse_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("SIP head is not UTF-8", code="400") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0":
        raise ProtocolError("not a SIP/2.0 request line", code="400")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError("a header line without ':'", code="400")
        key = name.strip().lower()
        headers.append((COMPACT.get(key, key), value.strip()))
    return parts[0], parts[1], headers


def parse(datagram: bytes) -> Request:
    """A whole request (a UDP datagram or one framed from a TCP stream)."""
    head, sep, body = datagram.partition(b"\r\n\r\n")
    if not sep:
        raise ProtocolError("no end of headers", code="400")
    method, uri, headers = _parse_head(head)
    request = Request(method=method, uri=uri, headers=headers, body=body)
    length = request.header("content-length")
    if length is not None:
        if not length.isdigit() or int(length) > len(body):
            raise ProtocolError("Content-Length does not match the body", code="400")
        request = Request(method=method, uri=uri, headers=headers, body=body[: int(length)])
    for name in ("via", "from", "to", "call-id", "cseq"):
        if request.header(name) is None:
            raise ProtocolError(f"missing {name} header", code="400")
    return request


def take_message(buffer: bytearray) -> bytes | None:
    """Remove and return the next request from a TCP stream buffer (None: need more).
    Over TCP a request must say its Content-Length (RFC 3261 18.3)."""
    while buffer[:2] == b"\r\n":  # keep-alive CRLFs between messages
        del buffer[:2]
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_MESSAGE:
            buffer.clear()
            raise ProtocolError("headers too long", code="413")
        return None
    length = 0
    for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            try:
                length = int(value.strip())
            except ValueError:
                del buffer[: end + 4]
                raise ProtocolError("Content-Length is not a number", code="400") from None
    total = end + 4 + length
    if total > MAX_MESSAGE:
        buffer.clear()
        raise ProtocolError("message too long", code="413")
    return cut(buffer, total)


def response(
    request: Request,
    status: int,
    *,
    body: bytes = b"",
    content_type: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A response to `request`: its Via, From, To (with our tag), Call-ID and CSeq."""
    lines = [f"SIP/2.0 {status} {REASONS.get(status, 'Error')}"]
    for name in COPIED:
        for value in request.all(name):
            if name == "to" and ";tag=" not in value:
                value = f"{value};tag={_tag(request)}"
            lines.append(f"{_title(name)}: {value}")
    lines += [f"{name}: {value}" for name, value in extra]
    if body and content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _tag(request: Request) -> str:
    """The same To tag for every retransmission of a request (stateless)."""
    seed = f"{request.header('call-id')}|{request.header('cseq')}".encode()
    return hashlib.sha256(seed).hexdigest()[:12]


def _title(name: str) -> str:
    return {"call-id": "Call-ID", "cseq": "CSeq"}.get(name, name.title())
