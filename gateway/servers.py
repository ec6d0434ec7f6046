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
connection opening. A client that does not read its answers is cut off as slow once they are
more than the transport's high-water mark for `message_s`.

TCP is an `asyncio.Protocol` (`_Connection`), not a StreamReader/StreamWriter pair: a block
that arrives whole is handed over from `data_received` to a task, without a stream's future per
read and a timeout context per read (the deadlines are one timer per connection); docs/bench.md
says what that gave.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol as Interface
from typing import cast

from gateway.errors import ProtocolError
from gateway.limits import Slots, source_key
from gateway.metrics import GatewayMetrics
from gateway.model import Protocol
from gateway.tasks import settle

log = logging.getLogger(__name__)
MAX_BUFFER = 128 * 1024  # a connection's unanswered bytes; more, and it is not read meanwhile


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
        self.connections: set[_Connection] = set()  # those accepted and not finished

    async def start(self, host: str, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: _Connection(self), host, port, reuse_address=True)

    async def shut(self, *, timeout_s: float) -> None:
        """At shutdown, once the listening socket is closed: the messages in hand answered
        (within `timeout_s`, or given up), then every connection closed."""
        answering = [c._task for c in self.connections if c._task is not None]
        await settle(answering, timeout_s=timeout_s)
        for connection in list(self.connections):
            connection._close(abort=True)
        await asyncio.sleep(0)  # their connection_lost, which gives their slots back


class _Connection(asyncio.Protocol):
    """One TCP connection: bytes in `data_received`, a task that answers the whole messages in
    the buffer one after the other while there are any (none between them), and one timer for
    the connection's deadlines, moved only when it fires (or when a message starts arriving),
    not on every message. Nothing is read while the buffer holds more than `MAX_BUFFER`."""

    def __init__(self, server: StreamServer) -> None:
        self.server = server
        self.receiver = server.receiver
        self.protocol = server.receiver.protocol.value
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.source = "-"
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._writable: asyncio.Future[None] | None = None  # while writing is paused
        self._eof = self._closed = self._finished = False
        now = self.loop.time()
        started = now if self.receiver.one_shot else None
        self.clock = _Clock(opened=now, last_whole=now, started=started)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.source = _peer(transport.get_extra_info("peername"))
        refused = self.server.slots.acquire(self.source)
        if refused is not None:
            self.server.metrics.refused.labels(self.protocol, "tcp", refused).inc()
            self._closed = self._finished = True
            self.transport.abort()
            return
        self.server.metrics.connections.labels(self.protocol).inc()
        self.server.connections.add(self)
        wait, _ = self.clock.next_read(self.server.timeouts, self.clock.opened)
        self._arm(self.clock.opened + wait)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self._task is None and not self._closed:
            self._task = self.loop.create_task(self._answer())
        elif len(self.buffer) > MAX_BUFFER and self.transport is not None:
            self.transport.pause_reading()  # resumed when the task has taken what it can

    def eof_received(self) -> bool:
        self._eof = True
        if self._task is None and not self._closed:
            self._task = self.loop.create_task(self._answer())
        return True  # the task closes it, after the last answer

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if self._task is None:
            self._finish()

    def pause_writing(self) -> None:
        self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    async def _answer(self) -> None:
        try:
            await self._messages()
        except _Cut as cut:
            self.server.metrics.cut.labels(self.protocol, cut.reason).inc()
            self._close(abort=True)
        except ConnectionError:
            self._close(abort=True)
        except Exception:
            log.exception("gateway %s: connection failed", self.protocol)
            self._close(abort=True)
        finally:
            self._task = None
            if self._closed:
                self._finish()

    async def _messages(self) -> None:
        """Answer every whole message in the buffer (what `StreamServer` did after a read)."""
        receiver, buffer, clock = self.receiver, self.buffer, self.clock
        while not self._closed:
            try:
                message = receiver.take(buffer)
            except ProtocolError as exc:
                await self._send(receiver.framing_error(exc, self.source))
                continue
            if message is None and self._eof and buffer:
                message = bytes(buffer)  # the device closed after a partial message
                buffer.clear()
            if message is None:
                break
            await self._send(await receiver.handle(message, self.source))
            if receiver.one_shot:
                self._close()
                return
            clock.last_whole, clock.started = self.loop.time(), None
        if self._eof:
            self._close()
            return
        if not buffer:
            clock.started = clock.opened if receiver.one_shot else None
        elif clock.started is None:
            clock.started = self.loop.time()
            self._arm(clock.started + self.server.timeouts.message_s)
        if self.transport is not None and not self._closed:
            self.transport.resume_reading()

    async def _send(self, reply: bytes | None) -> None:
        if not reply or self.transport is None or self.transport.is_closing():
            return
        self.transport.write(reply)
        if self._writable is None:
            return  # taken at once, or under the high-water mark: nothing to wait for
        try:  # a client that does not read its answers is a slow one too
            async with asyncio.timeout(self.server.timeouts.message_s):
                await self._writable
        except TimeoutError:
            raise _Cut("slow") from None

    def _arm(self, when: float) -> None:
        """The deadline timer at `when`, unless it is set to go off before that already."""
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._deadline)

    def _deadline(self) -> None:
        self._timer = None
        if self._closed:
            return
        now = self.loop.time()
        if self._task is not None:  # answering: no deadline runs (as none did while handling)
            self._arm(now + self.server.timeouts.message_s)
            return
        wait, reason = self.clock.next_read(self.server.timeouts, now)
        if wait > 0:
            self._arm(now + wait)
            return
        self.server.metrics.cut.labels(self.protocol, reason).inc()
        self._close(abort=True)
        self._finish()

    def _close(self, *, abort: bool = False) -> None:
        """Close (after the answers already written), or at once for a client cut off."""
        self._closed = True
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def _finish(self) -> None:
        """Once: the slot and the gauge back, the timer off."""
        if self._finished:
            return
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.server.slots.release(self.source)
        self.server.metrics.connections.labels(self.protocol).dec()
        self.server.connections.discard(self)


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
        if reply and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)  # closed: the device has no answer, and retries

    async def shut(self, *, timeout_s: float) -> None:
        """At shutdown: the socket closed, the datagrams in hand handled (within `timeout_s`,
        or given up)."""
        if self.transport is not None:
            self.transport.close()
        await settle(self._tasks, timeout_s=timeout_s)

    @classmethod
    async def start(
        cls, *, receiver: Receiver, metrics: GatewayMetrics, slots: Slots, host: str, port: int
    ) -> DatagramServer:
        loop = asyncio.get_running_loop()
        _, server = await loop.create_datagram_endpoint(
            lambda: cls(receiver=receiver, metrics=metrics, slots=slots),
            local_addr=(host, port),
            reuse_port=False,
        )
        return server
