"""Part 8 of the benchmark: where a stored event's database time goes.

One writer stores batches of 2,000 heartbeats (as ingest's writers do, `ingest.store_psycopg`
with the processors ingest runs) with no broker and no parsing in the clock: first from
devices seen for the first time (the drain's backlog: 250,000 devices, each event a new one),
then from the same devices again (the field's steady state: every device known). The write is
split at two marks taken by processors placed first and last: COPY into staging + the insert
of the new events (`event_ids`, `events`, `ingest_new`), then the processors (device liveness
for heartbeats), then the commit. Beside it the same run's raw COPY costs per row
(part 1), so the gap to "≥ 0.15 of COPY" reads in microseconds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from larmkedja.db import Cursor
from larmkedja.events import DeviceEvent, ReceivedEvent
from simulators.bench.field import heartbeat

BATCH = 2000  # ingest's default LARM_INGEST_BATCH_MAX
BATCHES = 25


class Store(Protocol):
    """Ingest's store as its writers use it (`ingest.store_psycopg.EventStore`)."""

    def write(self, events: Sequence[ReceivedEvent], dead: Sequence[Any], /) -> object: ...

    def close(self) -> None: ...


class Mark:
    """A processor that only notes when the store reached it."""

    def __init__(self) -> None:
        self.at = 0.0

    def process(self, cur: Cursor, notable: Sequence[ReceivedEvent]) -> None:
        self.at = time.perf_counter()


# (database URL, the two marks) → the store with ingest's processors between the marks; made by
# the entry point (`larmkedja bench`), which alone may wire ingest and its processors together.
StoreFactory = Callable[[str, tuple[Mark, Mark]], Store]


def _batch(first: int, rng: random.Random) -> list[ReceivedEvent]:
    """Heartbeats of devices `first`… as the field load sends them, each a new event id."""
    now = datetime.now(UTC)
    ts = now.isoformat(timespec="milliseconds")
    out: list[ReceivedEvent] = []
    for i in range(first, first + BATCH):
        payload = heartbeat(f"s-{i:06d}", rng, ts)
        event = DeviceEvent.model_validate_json(payload)  # as ingest's parse checks it
        out.append(ReceivedEvent(site="bench", event=event, received_at=now))
    return out


def _timed(
    store: Store, start: Mark, end: Mark, batches: int, rng: random.Random
) -> dict[str, float]:
    parts = {"copy_and_insert_us": 0.0, "processors_us": 0.0, "commit_us": 0.0}
    for k in range(batches):
        batch = _batch(k * BATCH, rng)  # built outside the clock
        begun = time.perf_counter()
        store.write(batch, [])
        done = time.perf_counter()
        parts["copy_and_insert_us"] += start.at - begun
        parts["processors_us"] += end.at - start.at
        parts["commit_us"] += done - end.at
    n = batches * BATCH
    per_event = {k: v / n * 1e6 for k, v in parts.items()}
    per_event["total_us"] = sum(per_event.values())
    return per_event


def store_profile(
    database_url: str, make_store: StoreFactory, *, batches: int = BATCHES
) -> dict[str, Any]:
    """µs per event of each step, for first-seen devices and for known ones."""
    start, end = Mark(), Mark()
    store = make_store(database_url, (start, end))
    try:
        rng = random.Random(8)  # one stream: the second pass's event ids are new too
        first_seen = _timed(store, start, end, batches, rng)
        known = _timed(store, start, end, batches, rng)  # the same device ids again
    finally:
        store.close()
    return {"batch": BATCH, "events": batches * BATCH, "first_seen": first_seen, "known": known}
