"""Prometheus metrics of the ingest process. Labels are bounded sets: kind and reason only."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ingest.parse import Reason
from larmkedja.events import Kind


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
        self.received = Counter(
            "larm_ingest_events_received_total",
            "Valid events received from MQTT, by kind (redeliveries included).",
            ["kind"],
            registry=registry,
        )
        self.stored = Counter(
            "larm_ingest_events_stored_total",
            "Events stored for the first time, by kind.",
            ["kind"],
            registry=registry,
        )
        self.duplicates = Counter(
            "larm_ingest_events_duplicate_total",
            "Events received again with an event_id already stored (not stored again).",
            registry=registry,
        )
        self.dead_letters = Counter(
            "larm_ingest_dead_letters_total",
            "Payloads rejected as dead letters, by reason.",
            ["reason"],
            registry=registry,
        )
        self.db_errors = Counter(
            "larm_ingest_db_errors_total",
            "Failed batch writes (retried; nothing acknowledged), by class: connection (the "
            "database is gone), data (a row it refuses), other.",
            ["error"],
            registry=registry,
        )

    def _gauges(self, registry: CollectorRegistry) -> None:
        self.batch_size = Histogram(
            "larm_ingest_batch_size_messages",
            "Messages per committed batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000),
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "larm_ingest_commit_duration_seconds",
            "Time to write and commit one batch.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.lag = Gauge(
            "larm_ingest_lag_seconds",
            "Commit time minus the median device time of the last batch (backlog age).",
            registry=registry,
        )
        self.last_commit = Gauge(
            "larm_ingest_last_commit_timestamp_seconds",
            "Unix time of the last committed batch.",
            registry=registry,
        )
        self.oldest_uncommitted = Gauge(
            "larm_ingest_oldest_uncommitted_seconds",
            "Age of the oldest message received and not yet committed (0: none waits); grows "
            "while the database is slow or down, when no commit updates the lag.",
            registry=registry,
        )
        self.buffered = Gauge(
            "larm_ingest_buffered_messages",
            "Messages received and not yet acknowledged (bounded by the receive maximum).",
            registry=registry,
        )
        self.connected = Gauge(
            "larm_ingest_mqtt_connected",
            "1 while the broker connection is up.",
            registry=registry,
        )

    def count_kinds(self, counter: Counter, kinds: Tally[str]) -> None:
        for kind, n in kinds.items():
            counter.labels(kind).inc(n)
