"""Publish contract events at QoS 1 and let a receiver await the broker's PUBACK.

The receivers acknowledge a device only when `publish` has returned True: the broker has the
event (and keeps it for ingest's persistent session). paho's network thread resolves the
waiting futures on the event loop.

With two receiving paths (two brokers that share nothing, docs/scaling.md) `Paths` publishes
every event to each: the device is acknowledged as soon as one broker has it, the other copy
goes on in the background, and ingest stores the event once whichever copy comes first.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags
from paho.mqtt.reasoncodes import ReasonCode

from larmkedja.mqtt_paho import on_connect

log = logging.getLogger(__name__)
NO_MATCHING_SUBSCRIBERS = 0x10


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
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[bool]]] = {}
        # PUBACKs that arrived before their publisher registered (paho calls on_publish
        # before it marks the message published): mid -> success.
        self._early: dict[int, bool] = {}
        self._abandoned: set[int] = set()  # timed out: a late PUBACK is not anyone's
        self.connected = False
        client.on_publish = self._on_publish
        client.on_connect = on_connect(who="gateway", connected=self._on_connect)
        client.on_disconnect = self._on_disconnect

    def start(self, *, host: str, port: int, keepalive_s: int = 30) -> None:
        self._client.connect_async(host, port, keepalive=keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    async def publish(self, topic: str, payload: bytes) -> bool:
        """True once the broker has acknowledged; False if it did not within the timeout
        (the device is then told to retry; a late PUBACK only makes that retry a repeat
        of the same event id, which ingest stores once)."""
        if not self.connected:
            return False
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        info = self._client.publish(topic, payload, qos=1)
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is not None:
                return early
            self._waiting[info.mid] = (loop, future)
        try:
            return await asyncio.wait_for(future, self._timeout_s)
        except TimeoutError:
            return False
        finally:
            with self._lock:
                if self._waiting.pop(info.mid, None) is not None:
                    self._abandoned.add(info.mid)

    # --- paho's network thread ---------------------------------------------------------

    def _on_publish(
        self, client: Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        # 0x10 "no matching subscribers": the broker took it but nobody will store it (after
        # a broker restart, before ingest subscribes again): not delivered, the device retries.
        ok = not rc.is_failure and rc.value != NO_MATCHING_SUBSCRIBERS
        with self._lock:
            waiting = self._waiting.pop(mid, None)
            if waiting is None:
                if mid in self._abandoned:
                    self._abandoned.discard(mid)
                    return
                if len(self._early) > 10_000:  # never: every publish is awaited
                    self._early.clear()
                self._early[mid] = ok
                return
        loop, future = waiting
        loop.call_soon_threadsafe(_settle, future, ok)

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
        log.warning("gateway: disconnected from the broker: %s", rc)


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


def _settle(future: asyncio.Future[bool], ok: bool) -> None:
    if not future.done():
        future.set_result(ok)
