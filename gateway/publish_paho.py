"""Publish contract events at QoS 1 and let a receiver await the broker's PUBACK.

The receivers acknowledge a device only when `publish` has returned True: the broker has the
event (and keeps it for ingest's persistent session).

paho runs inside the gateway's event loop, not in a thread of its own: its socket is watched
by the loop (`add_reader`/`add_writer`, paho's "external event loop" callbacks), so a PUBACK
settles its future in the same thread, with no wake-up of another thread in either direction.
With paho's own network thread every message cost two such wake-ups (a socket-pair write to
wake paho for the PUBLISH, `call_soon_threadsafe` back for the PUBACK) and the two threads
fought over the GIL: the gateway acknowledged a third of what a bare publisher sends
(docs/bench.md). Connecting, which blocks, runs in the loop's executor; everything else runs
on the loop.

The client is `larmkedja.mqtt_publish_paho.FastPublisher`: the publishes of one pass of the
loop (every device message that arrived together) go out in one write at the end of the pass,
and a PUBACK settles its future as it is read. A publish is given up after `timeout_s`: one
timer for all of them, at the oldest deadline still waiting (`Deadlines`), not one per
publish; it may be late by up to `TICK_S`.

With two receiving paths (two brokers that share nothing, docs/scaling.md) `Paths` publishes
every event to each: the device is acknowledged as soon as one broker has it, the other copy
goes on in the background, and ingest stores the event once whichever copy comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags
from paho.mqtt.reasoncodes import ReasonCode

from larmkedja.mqtt_paho import make_client, on_connect
from larmkedja.mqtt_publish_paho import FastPublisher
from larmkedja.mqtt_wire import WireError
from larmkedja.settings import Settings

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

log = logging.getLogger(__name__)
NO_MATCHING_SUBSCRIBERS = 0x10
FAILURE = 0x80  # MQTT v5: a reason code from here on is a failure
MISC_S = 1.0  # paho's keepalive bookkeeping, and a reconnect when the connection is gone
TICK_S = 0.05  # how late a publish's timeout may be noticed


class EventPublisher(Protocol):
    """What the gateway needs of its way to the broker(s)."""

    @property
    def connected(self) -> bool: ...

    async def publish(self, topic: str, payload: bytes) -> bool: ...

    def stop(self) -> None: ...


def publisher_client(*, settings: Settings, client_id: str) -> FastPublisher:
    """The gateway's client: a `FastPublisher` with the settings' credentials and TLS."""
    client = make_client(settings=settings, client_id=client_id, cls=FastPublisher)
    if not isinstance(client, FastPublisher):  # pragma: no cover - make_client builds `cls`
        raise TypeError("make_client did not build a FastPublisher")
    return client


class Deadlines:
    """When each waiting publish is given up, oldest first (they all wait as long), with one
    timer at the oldest still waiting: a publish costs an append, not a timer of its own."""

    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._queue: deque[tuple[float, asyncio.Future[bool]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[bool]) -> None:
        due, queue = loop.time() + self.timeout_s, self._queue
        while queue and queue[0][1].done():  # settled: forgotten now, not at their deadline
            queue.popleft()
        queue.append((due, future))
        if self._timer is None:
            self._timer = loop.call_at(due, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now, queue = loop.time(), self._queue
        while queue and (queue[0][1].done() or queue[0][0] <= now):
            _, future = queue.popleft()
            if not future.done():
                future.set_result(False)  # not acknowledged in time: the device retries
        if queue:
            self._timer = loop.call_at(max(queue[0][0], now + TICK_S), self._expire, loop)


class Publisher:
    def __init__(self, *, client: FastPublisher, timeout_s: float) -> None:
        self._client = client
        self._deadlines = Deadlines(timeout_s=timeout_s)
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._flush: asyncio.Handle | None = None
        self._misc: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[Any] | None = None
        self._open = False  # paho has a socket (set and cleared by its callbacks)
        self._unreachable = False  # said once per outage, not every second
        self._host, self._port, self._keepalive_s = "", 0, 30
        self.connected = False
        client.on_puback = self._on_puback
        client.on_connect = on_connect(who="gateway", connected=self._on_connect)
        client.on_disconnect = self._on_disconnect
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    def start(self, *, host: str, port: int, keepalive_s: int = 30) -> None:
        """From inside the running loop: connect (in the background) and keep connected."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._host, self._port, self._keepalive_s = host, port, keepalive_s
        self._misc = self._loop.create_task(self._keep_connected(), name="gateway-mqtt")

    def stop(self) -> None:
        if self._misc is not None:
            self._misc.cancel()
        self._client.flush()
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_write()  # the DISCONNECT, if there is a socket to write it to

    async def publish(self, topic: str, payload: bytes) -> bool:
        """True once the broker has acknowledged; False if it did not within the timeout
        (the device is then told to retry; a late PUBACK only makes that retry a repeat
        of the same event id, which ingest stores once)."""
        loop = self._loop
        if not self.connected or loop is None:
            return False
        try:
            mid = self._client.queue_publish(topic.encode(), payload)
        except WireError as exc:
            log.error("gateway: cannot publish to %r: %s", topic, exc)
            return False
        if self._flush is None:  # every publish of this pass of the loop in one write
            self._flush = loop.call_soon(self._write)
        future: asyncio.Future[bool] = loop.create_future()
        self._waiting[mid] = future
        self._deadlines.add(loop, future)
        try:
            return await future
        finally:
            if self._waiting.get(mid) is future:
                del self._waiting[mid]

    def _write(self) -> None:
        self._flush = None
        self._client.flush()

    # --- in the loop ----------------------------------------------------------------------

    async def _keep_connected(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._open and self._connecting is None:
                self._connecting = loop.run_in_executor(None, self._connect)
                self._connecting.add_done_callback(self._connected_or_not)
            self._client.loop_misc()
            await asyncio.sleep(MISC_S)

    def _connect(self) -> None:
        """In the executor: paho's blocking connect (its socket then comes to the loop)."""
        self._client.connect(self._host, self._port, keepalive=self._keepalive_s)

    def _connected_or_not(self, done: asyncio.Future[Any]) -> None:
        self._connecting = None
        failed = not done.cancelled() and done.exception() is not None
        if failed and not self._unreachable:
            log.warning("gateway: cannot reach the broker: %s", done.exception())
        self._unreachable = failed

    def _on_puback(self, mid: int, reason: int) -> None:
        # 0x10 "no matching subscribers": the broker took it but nobody will store it (after
        # a broker restart, before ingest subscribes again): not delivered, the device retries.
        future = self._waiting.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(reason < FAILURE and reason != NO_MATCHING_SUBSCRIBERS)

    def _on_connect(self, client: Client, flags: ConnectFlags) -> None:
        self.connected = True

    def _on_disconnect(
        self,
        client: Client,
        userdata: Any,
        flags: DisconnectFlags,
        rc: ReasonCode,
        props: Any,
    ) -> None:
        self.connected = False
        for future in self._waiting.values():
            if not future.done():
                future.set_result(False)  # the device is told to retry at once
        log.warning("gateway: disconnected from the broker: %s", rc)

    # --- paho's socket, on the loop (the callbacks may come from the connecting thread) ---

    def _in_loop(self, fn: Any, *args: Any) -> None:
        if self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: Client, userdata: Any, sock: SocketLike) -> None:
        self._in_loop(self._watch, sock)

    def _watch(self, sock: SocketLike) -> None:
        self._open = True
        if self._loop is not None and sock.fileno() >= 0:
            self._loop.add_reader(sock, self._client.loop_read)

    def _on_socket_close(self, client: Client, userdata: Any, sock: SocketLike) -> None:
        self._in_loop(self._unwatch, sock)

    def _unwatch(self, sock: SocketLike) -> None:
        self._open = False
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(sock)
                self._loop.remove_writer(sock)

    def _on_register_write(self, client: Client, userdata: Any, sock: SocketLike) -> None:
        self._in_loop(self._want_write, sock)

    def _want_write(self, sock: SocketLike) -> None:
        if self._loop is not None and sock.fileno() >= 0:
            self._loop.add_writer(sock, self._client.loop_write)

    def _on_unregister_write(self, client: Client, userdata: Any, sock: SocketLike) -> None:
        self._in_loop(self._no_write, sock)

    def _no_write(self, sock: SocketLike) -> None:
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(sock)


class Paths:
    """Every event to each receiving path; True once one broker acknowledged it."""

    def __init__(self, publishers: Sequence[Publisher]) -> None:
        self._publishers = list(publishers)
        self._background: set[asyncio.Task[bool]] = set()

    @property
    def connected(self) -> bool:
        return any(p.connected for p in self._publishers)

    async def publish(self, topic: str, payload: bytes) -> bool:
        pending = {asyncio.create_task(p.publish(topic, payload)) for p in self._publishers}
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(task.result() for task in done):
                for task in pending:  # the other path still gets its copy
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                return True
        return False

    def stop(self) -> None:
        for publisher in self._publishers:
            publisher.stop()
