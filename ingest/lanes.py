"""Batches between paho's network thread and a writer thread.

Ingest has an alarm lane and `ingest_writers` bulk lanes, each with its own writer thread and
database connection: a bulk lane batches (flush at `ingest_batch_max` messages or
`ingest_flush_s` after the first), the alarm lane writes every safety alarm at once, so an alarm
never waits behind a batch of heartbeats. Which lane takes a message: `ingest/routing.py`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from ingest.parse import DeadLetter
from larmkedja.events import ReceivedEvent


@dataclass(slots=True)
class Message:
    """One received MQTT message: what to acknowledge, on which connection, its bytes, and
    what they say once parsed (at once for an alarm, else by the writer with its batch)."""

    generation: int
    mid: int
    qos: int
    received_at: datetime
    topic: bytes
    payload: bytes
    item: ReceivedEvent | DeadLetter | None = None
    done: bool = False  # committed (or not ours to store): may be acknowledged (`ingest/acks.py`)
    storable: bool = False  # its read held nothing the store may refuse (`parse.surely_storable`)


class Lane:
    def __init__(self, *, name: str, batch_max: int, flush_s: float) -> None:
        self.name = name
        self._batch_max = batch_max
        self._flush_s = flush_s
        self._cond = threading.Condition()
        self._buffer: list[Message] = []
        self._first_at = 0.0
        self._writing: list[Message] = []  # the batch being written (for the self-watch)

    def offer(self, messages: list[Message]) -> None:
        """From paho's thread, the lane's share of one read of the socket: never blocks for
        long, never drops."""
        with self._cond:
            if not self._buffer:
                self._first_at = time.monotonic()
            self._buffer.extend(messages)
            if self._flush_s == 0 or len(self._buffer) >= self._batch_max:
                self._cond.notify()

    def take(self, stopping: threading.Event, *, idle_s: float = 0.5) -> list[Message]:
        """The next batch, at most `batch_max` messages, the oldest first (empty after
        `idle_s` without messages, or when stopping)."""
        with self._cond:
            if not self._buffer:
                self._cond.wait(timeout=idle_s)
            while self._buffer and not stopping.is_set():
                due = self._first_at + self._flush_s - time.monotonic()
                if len(self._buffer) >= self._batch_max or due <= 0:
                    break
                self._cond.wait(timeout=due)
            batch = self._buffer[: self._batch_max]
            del self._buffer[: self._batch_max]
            self._writing = batch
        return batch

    def done(self) -> None:
        with self._cond:
            self._writing = []

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def pending(self) -> tuple[int, datetime | None]:
        """Messages held and not yet committed, and the receive time of the oldest."""
        with self._cond:
            held = [*self._writing[:1], *self._buffer[:1]]
            count = len(self._writing) + len(self._buffer)
        oldest = min((m.received_at for m in held), default=None)
        return count, oldest
