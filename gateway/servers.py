"""The receivers' sockets: asyncio TCP and UDP servers around a protocol receiver.

A receiver frames a TCP stream (`take`), answers one message (`handle`) and says what a
framing error gets (`framing_error`); both are told the message's source (its address's
budget, gateway/limits.py). A receiver that raises is logged and the connection closed: one
bad device never takes the gateway down.

What one client may hold (issue 18): at most `Slots` connections (or datagrams in hand) per
receiver, and per source; beyond that a connection is closed at once and a datagram dropped,
and counted. A message must be whole within `Timeouts.message_s` of its first byte (a client
that trickles it in a byte at a time is cut off, however often it sends); a connection that
brings no whole message for `idle_s`, or has been open `lifetime_s`, is closed between
messages. A one-shot receiver's (SOS Access) request must be whole within `message_s` of the
connection opening.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Protocol as Interface
from typing import cast

from gateway.errors import ProtocolError
from gateway.limits import Slots, source_key
from gateway.metrics import GatewayMetrics
from gateway.model import Protocol

log = logging.getLogger(__name__)
READ_BYTES = 4096


class Receiver(Interface):
    protocol: Protocol
    one_shot: bool

    def take(self, buffer: bytearray) -> bytes | None: ...

    def framing_error(self, exc: ProtocolError, source: str) -> bytes | None: ...

    async def handle(self, message: bytes, source: str) -> bytes | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    message_s: float = 10.0
    idle_s: float = 60.0
    lifetime_s: float = 3600.0


class _Cut(Exception):
    """The gateway closes this connection; `reason` is the metric's label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _peer(address: object) -> str:
    if isinstance(address, tuple) and address:
        return source_key(str(address[0]))
    return "-"


@dataclass(slots=True)
class _Clock:
    """Where one connection stands against its deadlines (loop time, seconds)."""

    opened: float
    last_whole: float
    started: float | None  # the first byte of the message in the buffer

    def next_read(self, t: Timeouts, now: float) -> tuple[float, str]:
        """How long the next read may wait, and what it is if it waits that long."""
        if self.started is not None:
            return self.started + t.message_s - now, "slow"
        idle = self.last_whole + t.idle_s
        end = self.opened + t.lifetime_s
        return (idle - now, "idle") if idle <= end else (end - now, "lifetime")


class StreamServer:
    def __init__(
        self, *, receiver: Receiver, metrics: GatewayMetrics, timeouts: Timeouts, slots: Slots
    ) -> None:
        self.receiver = receiver
        self.metrics = metrics
        self.timeouts = timeouts
        self.slots = slots

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._connection, host, port, reuse_address=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        protocol = self.receiver.protocol.value
        source = _peer(writer.get_extra_info("peername"))
        refused = self.slots.acquire(source)
        if refused is not None:
            self.metrics.refused.labels(protocol, "tcp", refused).inc()
            writer.transport.abort()
            return
        gauge = self.metrics.connections.labels(protocol)
        gauge.inc()
        try:
            await self._serve(reader, writer, source)
        except _Cut as cut:
            self.metrics.cut.labels(protocol, cut.reason).inc()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("gateway %s: connection failed", protocol)
        finally:
            self.slots.release(source)
            gauge.dec()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader, clock: _Clock) -> bytes:
        now = asyncio.get_running_loop().time()
        wait, reason = clock.next_read(self.timeouts, now)
        if wait <= 0:
            raise _Cut(reason)
        try:
            async with asyncio.timeout(wait):
                return await reader.read(READ_BYTES)
        except TimeoutError:
            raise _Cut(reason) from None

    async def _send(self, writer: asyncio.StreamWriter, reply: bytes | None) -> None:
        if not reply:
            return
        writer.write(reply)
        if writer.transport.get_write_buffer_size() == 0:
            return  # all sent at once: nothing to wait for (the usual case)
        try:  # a client that does not read its answers is a slow one too
            async with asyncio.timeout(self.timeouts.message_s):
                await writer.drain()
        except TimeoutError:
            raise _Cut("slow") from None

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, source: str
    ) -> None:
        loop = asyncio.get_running_loop()
        opened = loop.time()
        one_shot = self.receiver.one_shot
        clock = _Clock(opened=opened, last_whole=opened, started=opened if one_shot else None)
        buffer = bytearray()
        while True:
            chunk = await self._read(reader, clock)
            buffer += chunk
            while True:
                try:
                    message = self.receiver.take(buffer)
                except ProtocolError as exc:
                    await self._send(writer, self.receiver.framing_error(exc, source))
                    continue
                if message is None and not chunk and buffer:
                    message = bytes(buffer)  # the device closed after a partial message
                    buffer.clear()
                if message is None:
                    break
                await self._send(writer, await self.receiver.handle(message, source))
                if one_shot:
                    return
                clock.last_whole, clock.started = loop.time(), None
            if not chunk:
                return
            if not buffer:
                clock.started = opened if one_shot else None
            elif clock.started is None:
                clock.started = loop.time()


class DatagramServer(asyncio.DatagramProtocol):
    """One datagram is one message; the answer goes back to where it came from. At most
    `slots` datagrams are in hand at once (in all, and from one source); more are dropped."""

    def __init__(self, *, receiver: Receiver, metrics: GatewayMetrics, slots: Slots) -> None:
        self.receiver = receiver
        self.metrics = metrics
        self.slots = slots
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's own datagram transport does not subclass DatagramTransport (3.11)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        source = _peer(addr)
        refused = self.slots.acquire(source)
        if refused is not None:
            self.metrics.refused.labels(self.receiver.protocol.value, "udp", refused).inc()
            return
        task = asyncio.get_running_loop().create_task(self._answer(data, addr, source))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str | object, int], source: str) -> None:
        try:
            reply = await self.receiver.handle(data, source)
        except Exception:
            log.exception("gateway %s: datagram failed", self.receiver.protocol.value)
            return
        finally:
            self.slots.release(source)
        if reply and self.transport is not None:
            self.transport.sendto(reply, addr)

    @classmethod
    async def start(
        cls, *, receiver: Receiver, metrics: GatewayMetrics, slots: Slots, host: str, port: int
    ) -> asyncio.DatagramTransport:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: cls(receiver=receiver, metrics=metrics, slots=slots),
            local_addr=(host, port),
            reuse_port=False,
        )
        return transport
