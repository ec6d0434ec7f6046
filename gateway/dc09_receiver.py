"""SIA DC-09 receiver (TCP and UDP): a block in, ACK / NAK / DUH out.

ACK only after the broker's PUBACK of every event in the block. NAK when a block is damaged
(CRC, length) or an encrypted block's time is outside the window: the device sends it again.
DUH when it arrived whole but cannot be used: unknown account, wrong key, plain text from an
account that must encrypt, a payload we cannot read. No answer at all while the broker or the
registry is away: the device retries, which is what it must do.
"""

from __future__ import annotations

import re

from gateway import sia_dc09
from gateway.errors import ProtocolError, RegistryUnavailable
from gateway.model import Protocol, Refusal
from gateway.service import Gateway

P = Protocol.SIA_DC09
_NAMES = re.compile(rb"\^[^^]*\^")  # user, zone and area names: not kept in dead letters


def redact(frame: bytes) -> bytes:
    return _NAMES.sub(b"^-^", frame)


class Dc09Receiver:
    protocol = P
    one_shot = False

    def __init__(self, *, gateway: Gateway) -> None:
        self.gateway = gateway

    def take(self, buffer: bytearray) -> bytes | None:
        return sia_dc09.take_frame(buffer)

    def framing_error(self, exc: ProtocolError) -> bytes | None:
        self.gateway.refuse(P, Refusal.MALFORMED, sender_id=None, detail=str(exc), head=b"")
        return sia_dc09.nak(now=self.gateway.now())

    async def handle(self, frame: bytes) -> bytes | None:
        gw = self.gateway
        received_at = gw.now()
        try:
            block = sia_dc09.parse_block(frame)
        except ProtocolError as exc:
            gw.refuse(P, Refusal.MALFORMED, sender_id=None, detail=str(exc), head=redact(frame))
            return sia_dc09.nak(now=received_at)
        try:
            sender = await gw.sender(P, block.account)
        except RegistryUnavailable:
            gw.count(P, "busy")
            return None
        if sender is None:
            gw.refuse(
                P,
                Refusal.UNKNOWN_SENDER,
                sender_id=block.account,
                detail="account not registered",
                head=redact(frame),
            )
            return sia_dc09.duh(block)
        key = sender.aes_key()
        if key is not None and not block.encrypted:
            gw.refuse(
                P,
                Refusal.NOT_AUTHORIZED,
                sender_id=block.account,
                detail="this account must send encrypted blocks",
                head=redact(frame),
                site=sender.site,
            )
            return sia_dc09.duh(block)
        try:
            opened = sia_dc09.open_block(block, key=key)
            if block.encrypted and not sia_dc09.in_window(opened.timestamp, now=received_at):
                gw.count(P, "time_rejected")
                return sia_dc09.nak(now=received_at)
            messages = sia_dc09.translate(block, opened)
        except ProtocolError as exc:
            refusal = Refusal.UNDECRYPTABLE if exc.code == "key" else Refusal.MALFORMED
            gw.refuse(
                P,
                refusal,
                sender_id=block.account,
                detail=str(exc),
                head=redact(frame),
                site=sender.site,
            )
            return sia_dc09.duh(block)
        if await gw.deliver(sender, messages, received_at=received_at) is None:
            gw.count(P, "busy")
            return None
        gw.count(P, "accepted")
        return sia_dc09.ack(block, now=gw.now(), key=key if block.encrypted else None)
