"""Commit one batch, whatever it takes: retry on a database fault (holding the acks), set
aside the events the database refuses one by one (they become dead letters), give up only when
a stop runs out of time (then nothing is acknowledged and the broker redelivers)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import psycopg

from ingest.metrics import IngestMetrics
from ingest.parse import DeadLetter, Reason
from ingest.store_psycopg import EventStore
from larmkedja.events import ReceivedEvent

log = logging.getLogger(__name__)

# SQLSTATE classes that point at one bad row rather than at the database: data exception,
# integrity constraint violation, program limit exceeded.
DATA_ERROR_CLASSES = ("22", "23", "54")


class Writer:
    def __init__(
        self, *, store: EventStore, metrics: IngestMetrics, stopping: threading.Event
    ) -> None:
        self.store = store
        self._metrics = metrics
        self._stopping = stopping
        self.stop_deadline = 0.0

    def write(
        self, events: list[ReceivedEvent], dead: list[DeadLetter]
    ) -> tuple[Counter[str], list[DeadLetter]] | None:
        """Commit the batch, retrying until it is stored; None only if a stop ran out of time.
        Returns the new events per kind and the dead letters (with any the database refused)."""
        delay = 0.2
        while True:
            try:
                return self.store.write(events, dead).stored, dead
            except psycopg.Error as exc:
                data_error = (exc.sqlstate or "")[:2] in DATA_ERROR_CLASSES
                connection = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
                kind = "data" if data_error else "connection" if connection else "other"
                self._metrics.db_errors.labels(kind).inc()
                if data_error and events:
                    kept, rejected = self._set_aside_unstorable(events, exc)
                    if rejected:
                        events, dead = kept, dead + rejected
                        continue
                log.warning(
                    "batch not stored (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay
                )
                if connection:
                    self.store.close()
            except Exception as exc:  # a bug must not stop ingest, nor lose the batch
                log.exception("batch not stored (unexpected %s)", type(exc).__name__)
                self._metrics.db_errors.labels("other").inc()
                kept, rejected = self._set_aside_unstorable(events, exc)
                if rejected:
                    events, dead = kept, dead + rejected
                    continue
                self.store.close()
            if not self._backoff(delay):
                return None
            delay = min(delay * 2, 5.0)

    def _backoff(self, delay: float) -> bool:
        """Wait before a retry; False once a stop has no time left for another one."""
        if not self._stopping.is_set():
            self._stopping.wait(delay)
            return True
        remaining = self.stop_deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        return True

    def _set_aside_unstorable(
        self, events: list[ReceivedEvent], exc: Exception
    ) -> tuple[list[ReceivedEvent], list[DeadLetter]]:
        """Split off the events the database refuses one by one (none: the fault is elsewhere)."""
        try:
            bad = set(self.store.find_unstorable(events))
        except psycopg.Error:
            return events, []
        rejected = [
            DeadLetter(
                topic=r.event.topic(r.site),
                site=r.site,
                reason=Reason.STORE_REJECTED,
                detail=f"it could not be stored: {getattr(exc, 'sqlstate', None) or ''} "
                f"{type(exc).__name__}",
                received_at=r.received_at,
                payload_head=r.event.to_json()[:256],
            )
            for i, r in enumerate(events)
            if i in bad
        ]
        if rejected:
            log.error("%d event(s) refused by the database, kept as dead letters", len(rejected))
        return [r for i, r in enumerate(events) if i not in bad], rejected
