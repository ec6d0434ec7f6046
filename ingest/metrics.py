"""Prometheus metrics of the ingest process. Labels are bounded sets: kind and reason only."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter

from ingest.parse import Reason
from larmkedja.events import Kind
from larmkedja.metrics import counter, gauge, histogram


class IngestMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._counters(registry)
        self._gauges(registry)
        for kind in Kind:
            self.received.labels(kind.value)
            self.stored.labels(kind.value)
        for reason in Reason:
            self.dead_letters.labels(reason.value)
        for error in ("connection", "data", "other"):
            self.db_errors.labels(error)

    def _counters(self, registry: CollectorRegistry) -> None:
        self.received = counter(
            registry,
            "larm_ingest_events_received_total",
            "Valid events received from MQTT, by kind (redeliveries included).",
            "kind",
        )
        self.stored = counter(
            registry,
            "larm_ingest_events_stored_total",
            "Events stored for the first time, by kind.",
            "kind",
        )
        self.duplicates = counter(
            registry,
            "larm_ingest_events_duplicate_total",
            "Events received again with an event_id already stored (not stored again).",
        )
        self.dead_letters = counter(
            registry,
            "larm_ingest_dead_letters_total",
            "Payloads rejected as dead letters, by reason.",
            "reason",
        )
        self.db_errors = counter(
            registry,
            "larm_ingest_db_errors_total",
            "Failed batch writes (retried; nothing acknowledged), by class: connection (the "
            "database is gone), data (a row it refuses), other.",
            "error",
        )

    def _gauges(self, registry: CollectorRegistry) -> None:
        self.batch_size = histogram(
            registry,
            "larm_ingest_batch_size_messages",
            "Messages per committed batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000),
        )
        self.commit_seconds = histogram(
            registry,
            "larm_ingest_commit_duration_seconds",
            "Time to write and commit one batch.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.lag = gauge(
            registry,
            "larm_ingest_lag_seconds",
            "Commit time minus the median device time of the last batch (backlog age).",
        )
        self.last_commit = gauge(
            registry,
            "larm_ingest_last_commit_timestamp_seconds",
            "Unix time of the last committed batch.",
        )
        self.oldest_uncommitted = gauge(
            registry,
            "larm_ingest_oldest_uncommitted_seconds",
            "Age of the oldest message received and not yet committed (0: none waits); grows "
            "while the database is slow or down, when no commit updates the lag.",
        )
        self.buffered = gauge(
            registry,
            "larm_ingest_buffered_messages",
            "Messages received and not yet acknowledged (bounded by the receive maximum).",
        )
        self.connected = gauge(
            registry, "larm_ingest_mqtt_connected", "1 while the broker connection is up."
        )

    def count_kinds(self, counter: Counter, kinds: Tally[str]) -> None:
        for kind, n in kinds.items():
            counter.labels(kind).inc(n)
