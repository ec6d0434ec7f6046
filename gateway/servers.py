"""The receivers' sockets: asyncio TCP and UDP servers around a protocol receiver.

A receiver frames a TCP stream (`take`), answers one message (`handle`) and says what a
framing error gets (`framing_error`). A receiver that raises is logged and the connection
closed: one bad device never takes the gateway down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol as Interface
from typing import cast

from gateway.errors import ProtocolError
from gateway.metrics import GatewayMetrics
from gateway.model import Protocol

log = logging.getLogger(__name__)
IDLE_S = 60.0  # a TCP connection that says nothing this long is closed
READ_BYTES = 4096


class Receiver(Interface):
    protocol: Protocol
    one_shot: bool

    def take(self, buffer: bytearray) -> bytes | None: ...

    def framing_error(self, exc: ProtocolError) -> bytes | None: ...

    async def handle(self, message: bytes) -> bytes | None: ...


class StreamServer:
    def __init__(self, *, receiver: Receiver, metrics: GatewayMetrics, idle_s: float = IDLE_S):
        self.receiver = receiver
        self.metrics = metrics
        self.idle_s = idle_s

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._connection, host, port, reuse_address=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gauge = self.metrics.connections.labels(self.receiver.protocol.value)
        gauge.inc()
        try:
            await self._serve(reader, writer)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("gateway %s: connection failed", self.receiver.protocol.value)
        finally:
            gauge.dec()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = bytearray()
        while True:
            chunk = await asyncio.wait_for(reader.read(READ_BYTES), self.idle_s)
            buffer += chunk
            while True:
                try:
                    message = self.receiver.take(buffer)
                except ProtocolError as exc:
                    reply = self.receiver.framing_error(exc)
                    if reply:
                        writer.write(reply)
                        await writer.drain()
                    continue
                if message is None and not chunk and buffer:
                    message = bytes(buffer)  # the device closed after a partial message
                    buffer.clear()
                if message is None:
                    break
                reply = await self.receiver.handle(message)
                if reply:
                    writer.write(reply)
                    await writer.drain()
                if self.receiver.one_shot:
                    return
            if not chunk:
                return


class DatagramServer(asyncio.DatagramProtocol):
    """One datagram is one message; the answer goes back to where it came from."""

    def __init__(self, *, receiver: Receiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's own datagram transport does not subclass DatagramTransport (3.11)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            reply = await self.receiver.handle(data)
        except Exception:
            log.exception("gateway %s: datagram failed", self.receiver.protocol.value)
            return
        if reply and self.transport is not None:
            self.transport.sendto(reply, addr)

    @classmethod
    async def start(cls, *, receiver: Receiver, host: str, port: int) -> asyncio.DatagramTransport:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: cls(receiver=receiver), local_addr=(host, port), reuse_port=False
        )
        return transport
