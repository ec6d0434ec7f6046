"""SCAIP receiver: SIP MESSAGE (UDP and TCP) with an `application/scaip+xml` body.

A controller proves it is itself with SIP digest authentication (RFC 3261 §22): a MESSAGE
without credentials is answered `401 Unauthorized` with a challenge, and the device sends it
again with an `Authorization` whose username is its `cid`; the `<cid>` of the body must be
that username. Wrong credentials and an unknown controller get the same 401 (a fresh
challenge) after the same work, so the answer tells nobody which controllers exist. Only a
controller registered `--plain` (an administrator's explicit choice) is taken by its `cid`
alone.

Every authenticated MESSAGE is answered `200 OK` carrying the `<mrs>` answer: snu 0 only after
the broker's PUBACK, 6 (busy) while the broker or registry is away, 2 / 3 / 7 / 1 for a
malformed request. A body naming another controller than the credentials gets 403. OPTIONS
(a keep-alive) gets 200; other methods 405; another content type 415.
"""

from __future__ import annotations

import re

from gateway import scaip, sip, sip_digest
from gateway.credentials import ha1_of
from gateway.errors import ProtocolError, RegistryUnavailable
from gateway.model import Protocol, Refusal, Sender
from gateway.redact import redactor
from gateway.scaip import Mrq, Snu
from gateway.service import Gateway
from gateway.sip_digest import Credentials, Verdict

P = Protocol.SCAIP
ALLOW = (("Allow", "MESSAGE, OPTIONS"), ("Accept", scaip.CONTENT_TYPE))
redact = redactor(rb"<crd>[^<]*</crd>", b"<crd>***</crd>")  # the caller's number
_CID = re.compile(rb"<cid>\s*([0-9]{1,16})\s*</cid>")
_CID_TEXT = re.compile(r"[0-9]{1,16}")


class ScaipReceiver:
    protocol = P
    one_shot = False

    def __init__(self, *, gateway: Gateway, heartbeat_s: float, nonce_s: float) -> None:
        self.gateway = gateway
        self.heartbeat_s = heartbeat_s
        self.nonce_s = nonce_s

    def take(self, buffer: bytearray) -> bytes | None:
        return sip.take_message(buffer)

    def framing_error(self, exc: ProtocolError, source: str) -> bytes | None:
        self.gateway.malformed(P, exc, source=source)
        return None

    async def handle(self, datagram: bytes, source: str) -> bytes | None:
        gw = self.gateway
        try:
            request = sip.parse(datagram)
        except ProtocolError as exc:  # without its headers a request cannot be answered
            gw.malformed(P, exc, source=source, head=datagram.split(b"\r\n", 1)[0][:80])
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
        credentials = sip_digest.parse_authorization(request.header("authorization"))
        if credentials is not None:
            return await self._authenticated(request, credentials, source)
        return await self._unauthenticated(request, source)

    async def _unauthenticated(self, request: sip.Request, source: str) -> bytes:
        """No credentials: a plain controller's message, or the first leg of a digest login."""
        mrq = self._parse(request, source)
        if not isinstance(mrq, Mrq):
            return mrq
        try:
            sender = await self.gateway.sender(P, mrq.cid)
        except RegistryUnavailable:
            return self._busy(request, mrq.ref)
        if sender is None or not sender.plain:
            return self._challenge(request)
        return await self._deliver(request, mrq, sender)

    async def _authenticated(self, request: sip.Request, cred: Credentials, source: str) -> bytes:
        gw = self.gateway
        try:
            known = _CID_TEXT.fullmatch(cred.username) is not None
            sender = await gw.sender(P, cred.username) if known else None
        except RegistryUnavailable:
            return self._busy(request, scaip.reference_of(request.body))
        if sender is not None and sender.plain:
            return await self._unauthenticated(request, source)
        now = gw.now().timestamp()
        verdict = sip_digest.verify(
            cred,
            ha1=ha1_of(sender.secret) if sender else None,
            method=request.method,
            body=request.body,
            key=gw.key.nonces,
            now=now,
            lifetime_s=self.nonce_s,
        )
        if verdict is Verdict.STALE:
            return self._challenge(request, stale=True)
        if sender is None or verdict is not Verdict.OK:
            refusal = Refusal.UNKNOWN_SENDER if sender is None else Refusal.NOT_AUTHORIZED
            self._refuse(refusal, "digest credentials refused", request, source, cred.username)
            return self._challenge(request, counted=True)
        mrq = self._parse(request, source)
        if not isinstance(mrq, Mrq):
            return mrq
        if mrq.cid != sender.sender_id:
            detail = "<cid> is not the authenticated controller"
            self._refuse(Refusal.NOT_AUTHORIZED, detail, request, source, sender.sender_id, sender)
            return sip.response(request, 403)
        return await self._deliver(request, mrq, sender)

    def _parse(self, request: sip.Request, source: str) -> Mrq | bytes:
        """The request's <mrq>, or the answer to a malformed one."""
        try:
            return scaip.parse(request.body)
        except ProtocolError as exc:
            cid = _CID.search(request.body)
            sender_id = cid.group(1).decode() if cid else None
            self._refuse(Refusal.MALFORMED, str(exc), request, source, sender_id)
            answer = scaip.answer(scaip.reference_of(request.body), Snu(int(exc.code)), str(exc))
            return self._ok(request, answer)

    async def _deliver(self, request: sip.Request, mrq: Mrq, sender: Sender) -> bytes:
        gw = self.gateway
        message = scaip.translate(mrq, heartbeat_s=self.heartbeat_s)
        if await gw.deliver(sender, [message], received_at=gw.now()) is None:
            return self._busy(request, mrq.ref)
        gw.count(P, "accepted")
        hbi = scaip.hbi_for(self.heartbeat_s)
        return self._ok(request, scaip.answer(mrq.ref, Snu.OK, hbi=hbi))

    def _refuse(
        self,
        refusal: Refusal,
        detail: str,
        request: sip.Request,
        source: str,
        sender_id: str | None,
        sender: Sender | None = None,
    ) -> None:
        self.gateway.refuse(
            P,
            refusal,
            source=source,
            sender_id=sender_id,
            detail=detail,
            head=redact(request.body),
            site=sender.site if sender else None,
        )

    def _challenge(
        self, request: sip.Request, *, stale: bool = False, counted: bool = False
    ) -> bytes:
        if not counted:
            self.gateway.count(P, "challenged")
        now = self.gateway.now().timestamp()
        value = sip_digest.challenge(self.gateway.key.nonces, now=now, stale=stale)
        return sip.response(request, 401, extra=(("WWW-Authenticate", value),))

    def _busy(self, request: sip.Request, ref: str) -> bytes:
        self.gateway.count(P, "busy")
        return self._ok(request, scaip.answer(ref, Snu.BUSY, "try again"))

    @staticmethod
    def _ok(request: sip.Request, answer: bytes) -> bytes:
        return sip.response(request, 200, body=answer, content_type=scaip.CONTENT_TYPE)
