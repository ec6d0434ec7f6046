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

With two receiving paths (two brokers that share nothing, docs/scaling.md) `Paths` publishes
every event to each: the device is acknowledged as soon as one broker has it, the other copy
goes on in the background, and ingest stores the event once whichever copy comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from larmkedja.mqtt_paho import on_connect

if TYPE_CHECKING:
    from paho.mqtt.client import SocketLike

log = logging.getLogger(__name__)
NO_MATCHING_SUBSCRIBERS = 0x10
MISC_S = 1.0  # paho's keepalive bookkeeping, and a reconnect when the connection is gone


class EventPublisher(Protocol):
    """What the gateway needs of its way to the broker(s)."""

    @property
    def connected(self) -> bool: ...

    async def publish(self, topic: str, payload: bytes) -> bool: ...

    def stop(self) -> None: ...


class Publisher:
    def __init__(self, *, client: Client, timeout_s: float) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        # PUBACKs that arrived before their publisher registered: mid -> success. (Cannot
        # happen with paho in the loop, where the PUBACK is read after `publish` returns;
        # kept so that a change of paho's order is harmless.)
        self._early: dict[int, bool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._misc: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[Any] | None = None
        self._open = False  # paho has a socket (set and cleared by its callbacks)
        self._unreachable = False  # said once per outage, not every second
        self._host, self._port, self._keepalive_s = "", 0, 30
        self.connected = False
        client.on_publish = self._on_publish
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
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_write()  # the DISCONNECT, if there is a socket to write it to

    async def publish(self, topic: str, payload: bytes) -> bool:
        """True once the broker has acknowledged; False if it did not within the timeout
        (the device is then told to retry; a late PUBACK only makes that retry a repeat
        of the same event id, which ingest stores once)."""
        if not self.connected or self._loop is None:
            return False
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        early = self._early.pop(info.mid, None)
        if early is not None:
            return early
        future: asyncio.Future[bool] = self._loop.create_future()
        self._waiting[info.mid] = future
        try:
            async with asyncio.timeout(self._timeout_s):
                return await future
        except TimeoutError:
            return False
        finally:
            self._waiting.pop(info.mid, None)

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

    def _on_publish(
        self, client: Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        # 0x10 "no matching subscribers": the broker took it but nobody will store it (after
        # a broker restart, before ingest subscribes again): not delivered, the device retries.
        ok = not rc.is_failure and rc.value != NO_MATCHING_SUBSCRIBERS
        future = self._waiting.pop(mid, None)
        if future is None:
            if len(self._early) > 10_000:  # never: every publish is awaited
                self._early.clear()
            self._early[mid] = ok
        elif not future.done():
            future.set_result(ok)

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
