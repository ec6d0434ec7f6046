"""What every receiver does with a device message once its protocol is read: find the
sender, publish its events and wait for the broker's PUBACK, or refuse it as a dead letter.

Refusals are all counted; dead letters (a row and a notice on MQTT each) are rate-limited per
source address and in all (`TokenBuckets`), so a flood of bad messages from anyone is a
bounded number of dead letters and a counter, and other sources keep theirs."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.credentials import ServerKey
from gateway.errors import ProtocolError
from gateway.limits import TokenBuckets
from gateway.metrics import GatewayMetrics
from gateway.model import Protocol, Refusal, Sender, Translated, event_id_for, to_event
from gateway.publish_paho import EventPublisher
from gateway.registry_psycopg import Registry
from gateway.tasks import settle
from larmkedja.events import DeadLetter, DeviceEvent

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9_.:+-]")
RECENT_IDS = 100_000
MAX_PENDING_DEAD_LETTERS = 1000


def _now() -> datetime:
    return datetime.now(UTC)


class Gateway:
    def __init__(
        self,
        *,
        registry: Registry,
        publisher: EventPublisher,
        metrics: GatewayMetrics,
        key: ServerKey,
        dead_letters: TokenBuckets,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.registry = registry
        self.publisher = publisher
        self.metrics = metrics
        self.key = key
        self.dead_letters = dead_letters
        self.now = clock
        # By the id's integer: an int is no work for the garbage collector, a UUID object is
        # (100,000 of them made every young collection longer; docs/bench.md).
        self._delivered: OrderedDict[int, None] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()

    async def sender(self, protocol: Protocol, sender_id: str) -> Sender | None:
        return await self.registry.sender(protocol, sender_id)

    async def deliver(
        self, sender: Sender, messages: list[Translated], *, received_at: datetime
    ) -> list[DeviceEvent] | None:
        """Publish the events of one device message; their list once the broker has every
        one of them, None if it has not (the device must not be acknowledged then)."""
        events = [to_event(sender, m, received_at=received_at) for m in messages]
        started = time.monotonic()
        publish = self.publisher.publish
        if len(events) == 1:  # the usual case: no tasks to gather
            results = [await publish(events[0].topic(sender.site), events[0].to_json())]
        else:
            results = await asyncio.gather(
                *(publish(e.topic(sender.site), e.to_json()) for e in events)
            )
        if not all(results):
            return None
        protocol, metrics = sender.protocol.value, self.metrics
        metrics.of(metrics.publish_seconds, protocol).observe(time.monotonic() - started)
        for event in events:
            metrics.of(metrics.events, protocol, event.kind.value).inc()
            self._remember(event.event_id)
        return events

    def _remember(self, event_id: uuid.UUID) -> None:
        self._delivered[event_id.int] = None
        if len(self._delivered) > RECENT_IDS:
            self._delivered.popitem(last=False)

    async def delivered_before(self, sender: Sender, message: Translated) -> bool:
        """Whether this exact message (same identity) has already been delivered: by this
        gateway lately, or by any gateway before ingest stored it."""
        event_id = event_id_for(sender, message, received_at=self.now())
        if event_id is None:
            return False
        if event_id.int in self._delivered:
            return True
        return await self.registry.event_stored(event_id)

    def count(self, protocol: Protocol, result: str) -> None:
        metrics = self.metrics
        metrics.of(metrics.messages, protocol.value, result).inc()
        metrics.of(metrics.last_message, protocol.value).set(time.time())

    def malformed(
        self,
        protocol: Protocol,
        exc: ProtocolError,
        *,
        source: str,
        head: bytes = b"",
        sender_id: str | None = None,
    ) -> None:
        """`refuse` a message that breaks its protocol (`exc` says how): `head` is what of it
        may be kept, `sender_id` who it says it is from, if that can be read."""
        self.refuse(
            protocol,
            Refusal.MALFORMED,
            source=source,
            sender_id=sender_id,
            detail=str(exc),
            head=head,
        )

    def refuse(
        self,
        protocol: Protocol,
        refusal: Refusal,
        *,
        source: str,
        sender_id: str | None,
        detail: str,
        head: bytes,
        site: str | None = None,
    ) -> None:
        """Count a refused message and keep it as a dead letter (in the background: the
        device's answer does not wait for it), unless its source is over its rate."""
        self.count(protocol, refusal.value)
        over = len(self._background) >= MAX_PENDING_DEAD_LETTERS
        if over or not self.dead_letters.take(source, now=time.monotonic()):
            self.metrics.dead_letters_suppressed.labels(protocol.value).inc()
            return  # a flood: counted, not written one by one
        sender = _SAFE.sub("?", (sender_id or "-")[:64])
        letter: DeadLetter[str] = DeadLetter(
            topic=f"gateway/{protocol.value}/{sender}",
            site=site,
            reason=f"gateway.{refusal.value}",
            detail=detail,
            received_at=self.now(),
            payload_head=head[:256],
        )
        task = asyncio.get_running_loop().create_task(self._dead_letter(letter))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _dead_letter(self, letter: DeadLetter[str]) -> None:
        await self.registry.dead_letter(letter)
        # Latin-1: a binary protocol's bytes are kept one for one.
        await self.publisher.publish(*letter.notice(encoding="latin-1"))

    async def drain(self, *, timeout_s: float) -> None:
        """Wait for the dead letters still being written (at shutdown); those not written
        within `timeout_s` are given up (counted in the log), none left pending."""
        if given_up := await settle(self._background, timeout_s=timeout_s):
            log.warning("gateway: %d dead letters not kept at shutdown", given_up)
