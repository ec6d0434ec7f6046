"""SCAIP receiver: SIP MESSAGE (UDP and TCP) with an `application/scaip+xml` body.

Every MESSAGE is answered `200 OK` carrying the `<mrs>` answer: snu 0 only after the broker's
PUBACK, 6 (busy) while the broker or registry is away, 2 / 3 / 7 / 1 for a malformed request.
A controller that is not registered gets `403 Forbidden` (and a dead letter). OPTIONS (a
keep-alive) gets 200; other methods 405; another content type 415.
"""

from __future__ import annotations

import re

from gateway import scaip, sip
from gateway.errors import ProtocolError, RegistryUnavailable
from gateway.model import Protocol, Refusal
from gateway.scaip import Snu
from gateway.service import Gateway

P = Protocol.SCAIP
ALLOW = (("Allow", "MESSAGE, OPTIONS"), ("Accept", scaip.CONTENT_TYPE))
_CALLER = re.compile(rb"<crd>[^<]*</crd>")  # the caller's number
_CID = re.compile(rb"<cid>\s*([0-9]{1,16})\s*</cid>")


def redact(body: bytes) -> bytes:
    return _CALLER.sub(b"<crd>***</crd>", body)


class ScaipReceiver:
    protocol = P
    one_shot = False

    def __init__(self, *, gateway: Gateway, heartbeat_s: float) -> None:
        self.gateway = gateway
        self.heartbeat_s = heartbeat_s

    def take(self, buffer: bytearray) -> bytes | None:
        return sip.take_message(buffer)

    def framing_error(self, exc: ProtocolError) -> bytes | None:
        self.gateway.refuse(P, Refusal.MALFORMED, sender_id=None, detail=str(exc), head=b"")
        return None

    async def handle(self, datagram: bytes) -> bytes | None:
        gw = self.gateway
        try:
            request = sip.parse(datagram)
        except ProtocolError as exc:  # without its headers a request cannot be answered
            first_line = datagram.split(b"\r\n", 1)[0][:80]
            gw.refuse(P, Refusal.MALFORMED, sender_id=None, detail=str(exc), head=first_line)
            return None
        if request.method == "ACK":
            return None
        if request.method == "OPTIONS":
            return sip.response(request, 200, extra=ALLOW)
        if request.method != "MESSAGE":
            return sip.response(request, 405, extra=ALLOW)
        if request.content_type != scaip.CONTENT_TYPE:
            gw.count(P, "malformed")
            return sip.response(request, 415, extra=ALLOW)
        return await self._message(request)

    async def _message(self, request: sip.Request) -> bytes:
        gw = self.gateway
        body = request.body
        try:
            mrq = scaip.parse(body)
        except ProtocolError as exc:
            cid = _CID.search(body)
            gw.refuse(
                P,
                Refusal.MALFORMED,
                sender_id=cid.group(1).decode() if cid else None,
                detail=str(exc),
                head=redact(body),
            )
            return self._ok(
                request, scaip.answer(scaip.reference_of(body), Snu(int(exc.code)), str(exc))
            )
        try:
            sender = await gw.sender(P, mrq.cid)
        except RegistryUnavailable:
            gw.count(P, "busy")
            return self._ok(request, scaip.answer(mrq.ref, Snu.BUSY, "try again"))
        if sender is None:
            gw.refuse(
                P,
                Refusal.UNKNOWN_SENDER,
                sender_id=mrq.cid,
                detail="controller not registered",
                head=redact(body),
            )
            return sip.response(request, 403)
        message = scaip.translate(mrq, heartbeat_s=self.heartbeat_s)
        if await gw.deliver(sender, [message], received_at=gw.now()) is None:
            gw.count(P, "busy")
            return self._ok(request, scaip.answer(mrq.ref, Snu.BUSY, "try again"))
        gw.count(P, "accepted")
        hbi = scaip.hbi_for(self.heartbeat_s)
        return self._ok(request, scaip.answer(mrq.ref, Snu.OK, hbi=hbi))

    @staticmethod
    def _ok(request: sip.Request, answer: bytes) -> bytes:
        return sip.response(request, 200, body=answer, content_type=scaip.CONTENT_TYPE)
