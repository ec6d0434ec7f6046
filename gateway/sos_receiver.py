"""SOS Access v4 receiver (TCP): one request per connection, answered with its status.

0 only after the broker's PUBACK. 4 for an unknown transmitter or a wrong password, the same
answer after the same work either way (both kept as rate-limited dead letters), 5 while the
broker or registry is away (the client fails over or retries), 10 for an alarm already
delivered (same reference and content), 101 for heartbeats faster than allowed, and the
malformed-request codes 1, 2, 3, 7 and 100.
"""

from __future__ import annotations

import re
import time

from gateway import sos_access
from gateway.credentials import password_matches
from gateway.errors import ProtocolError, RegistryUnavailable
from gateway.framing import cut
from gateway.model import Protocol, Refusal, Sender
from gateway.redact import redactor
from gateway.service import Gateway
from gateway.sos_access import Request, Status

P = Protocol.SOS_ACCESS
redact = redactor(
    rb"<authentication>[^<]*</authentication>", b"<authentication>***</authentication>"
)
_CODE = re.compile(rb"<transmittercode>\s*([^<\s]{1,15})\s*</transmittercode>")


class SosAccessReceiver:
    protocol = P
    one_shot = True  # one request, one response, then the connection closes

    def __init__(self, *, gateway: Gateway, ping_min_s: float) -> None:
        self.gateway = gateway
        self.ping_min_s = ping_min_s
        self._last_ping: dict[str, float] = {}

    def take(self, buffer: bytearray) -> bytes | None:
        if sos_access.is_complete(bytes(buffer)) or len(buffer) > sos_access.MAX_BYTES:
            return cut(buffer, len(buffer))
        return None

    def framing_error(self, exc: ProtocolError, source: str) -> bytes | None:
        return None

    async def handle(self, raw: bytes, source: str) -> bytes:
        gw = self.gateway
        root = sos_access.response_root(raw)
        try:
            request = sos_access.parse(raw)
        except ProtocolError as exc:
            code = _CODE.search(raw)
            sender_id = code.group(1).decode("latin-1") if code else None
            gw.malformed(P, exc, source=source, head=redact(raw), sender_id=sender_id)
            return self._answer(root, Status(int(exc.code)), str(exc), None)
        root = sos_access.ROOTS[request.root]
        status, info = await self._process(request, raw, source)
        return self._answer(root, status, info, request.reference)

    async def _process(self, request: Request, raw: bytes, source: str) -> tuple[Status, str]:
        gw = self.gateway
        try:
            sender = await gw.sender(P, request.transmitter)
        except RegistryUnavailable:
            gw.count(P, "busy")
            return Status.NOT_TREATED, "receiver cannot check the transmitter now; try again"
        # The same work for an unknown transmitter as for a known one (no secret to match).
        stored = sender.secret if sender else None
        matches = password_matches(stored, request.fields["authentication"], gw.key)
        if sender is None or not matches:
            refusal = Refusal.UNKNOWN_SENDER if sender is None else Refusal.NOT_AUTHORIZED
            gw.refuse(
                P,
                refusal,
                source=source,
                sender_id=request.transmitter,
                detail=refusal.value,
                head=redact(raw),
                site=sender.site if sender else None,
            )
            return Status.NOT_AUTHORIZED, "wrong transmitter or password"
        if request.root == "requestnewauthentication":
            gw.count(P, "not_authorized")
            return Status.SERVICE_UNAVAILABLE, "password change is not offered; ask the centre"
        if request.root == "pingrequest" and self._too_often(request.transmitter):
            gw.count(P, "too_often")
            return Status.PING_TOO_OFTEN, f"at most one heartbeat per {self.ping_min_s:g} s"
        return await self._deliver(sender, request)

    async def _deliver(self, sender: Sender, request: Request) -> tuple[Status, str]:
        gw = self.gateway
        message = sos_access.translate(request)
        if request.root == "alarmrequest" and await gw.delivered_before(sender, message):
            gw.count(P, "duplicate")
            return Status.DUPLICATE_ALARM, "this alarm has already been received"
        if await gw.deliver(sender, [message], received_at=gw.now()) is None:
            gw.count(P, "busy")
            return Status.NOT_TREATED, "not delivered; send it again"
        if request.root == "pingrequest":
            self._last_ping[request.transmitter] = time.monotonic()
        gw.count(P, "accepted")
        return Status.OK, "OK"

    def _too_often(self, transmitter: str) -> bool:
        last = self._last_ping.get(transmitter)
        return last is not None and time.monotonic() - last < self.ping_min_s

    def _answer(self, root: str, status: Status, info: str, reference: str | None) -> bytes:
        return sos_access.response(root, status, info, reference=reference, now=self.gateway.now())
