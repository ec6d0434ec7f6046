"""SIA DC-09 receiver (TCP and UDP): a block in, ACK / NAK / DUH out.

ACK only after the broker's PUBACK of every event in the block. NAK when a block is damaged
(CRC, length) or its timestamp is outside the window (every block that carries one, plain or
encrypted: a recorded block replayed later is refused): the device sends it again with our
time. DUH when it arrived whole but cannot be used: unknown account, wrong key, plain text from
an account that must encrypt, a payload we cannot read; the same DUH whichever, so the answer
tells nobody which accounts exist. No answer at all while the broker or the registry is away:
the device retries, which is what it must do.

A plain block without a timestamp is accepted from an account registered `--plain` (only
those may send plain blocks at all): DC-09 makes the timestamp optional for unencrypted
blocks and plain panels (dc09-spt among them) leave it out; and a timestamp in a block anyone
can write proves nothing anyway. Such an account has no protection but the network it is on
(docs/protocols.md).
"""

from __future__ import annotations

from datetime import datetime

from gateway import sia_dc09
from gateway.errors import ProtocolError, RegistryUnavailable
from gateway.model import Protocol, Refusal, Sender
from gateway.redact import redactor
from gateway.service import Gateway
from gateway.sia_dc09 import Block

P = Protocol.SIA_DC09
redact = redactor(rb"\^[^^]*\^", b"^-^")  # user, zone and area names: not kept in dead letters


def refusal_of(sender: Sender | None, block: Block) -> tuple[Refusal, str] | None:
    """Why a block from this account cannot be opened at all, if it cannot."""
    if sender is None:
        return Refusal.UNKNOWN_SENDER, "account not registered"
    if sender.plain:
        return None  # an encrypted block from it is undecryptable: open_block says so
    if sender.aes_key() is None:
        return Refusal.NOT_AUTHORIZED, "no usable key registered for this account"
    if not block.encrypted:
        return Refusal.NOT_AUTHORIZED, "this account must send encrypted blocks"
    return None


class Dc09Receiver:
    protocol = P
    one_shot = False

    def __init__(self, *, gateway: Gateway) -> None:
        self.gateway = gateway

    def take(self, buffer: bytearray) -> bytes | None:
        return sia_dc09.take_frame(buffer)

    def framing_error(self, exc: ProtocolError, source: str) -> bytes | None:
        self.gateway.malformed(P, exc, source=source)
        return sia_dc09.nak(now=self.gateway.now())

    async def handle(self, frame: bytes, source: str) -> bytes | None:
        gw = self.gateway
        received_at = gw.now()
        try:
            block = sia_dc09.parse_block(frame)
        except ProtocolError as exc:
            gw.malformed(P, exc, source=source, head=redact(frame))
            return sia_dc09.nak(now=received_at)
        try:
            sender = await gw.sender(P, block.account)
        except RegistryUnavailable:
            gw.count(P, "busy")
            return None
        refused = refusal_of(sender, block)
        if sender is None or refused is not None:
            refusal, detail = refused or (Refusal.UNKNOWN_SENDER, "")
            self._refuse(refusal, detail, block, frame, source, sender)
            return sia_dc09.duh(block)
        return await self._open(sender, block, frame, source, received_at)

    async def _open(
        self, sender: Sender, block: Block, frame: bytes, source: str, received_at: datetime
    ) -> bytes | None:
        gw = self.gateway
        key = sender.aes_key()
        try:
            opened = sia_dc09.open_block(block, key=key)
            stamp = opened.timestamp
            if stamp is not None and not sia_dc09.in_window(stamp, now=received_at):
                gw.count(P, "time_rejected")
                return sia_dc09.nak(now=received_at)
            messages = sia_dc09.translate(block, opened)
        except ProtocolError as exc:
            refusal = Refusal.UNDECRYPTABLE if exc.code == "key" else Refusal.MALFORMED
            self._refuse(refusal, str(exc), block, frame, source, sender)
            return sia_dc09.duh(block)
        if await gw.deliver(sender, messages, received_at=received_at) is None:
            gw.count(P, "busy")
            return None
        gw.count(P, "accepted")
        return sia_dc09.ack(block, now=gw.now(), key=key if block.encrypted else None)

    def _refuse(
        self,
        refusal: Refusal,
        detail: str,
        block: Block,
        frame: bytes,
        source: str,
        sender: Sender | None,
    ) -> None:
        self.gateway.refuse(
            P,
            refusal,
            source=source,
            sender_id=block.account,
            detail=detail,
            head=redact(frame),
            site=sender.site if sender else None,
        )
