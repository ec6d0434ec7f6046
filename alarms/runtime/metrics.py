"""Prometheus metrics of the engine itself (sweeps, outbox). Labels: bounded sets only; the
sweeps that publish gauges of their own subdomain register them themselves."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from larmkedja.metrics import counter, gauge, histogram


class EngineMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.published = counter(
            registry,
            "larm_outbox_published_total",
            "Messages published from the outbox, by topic kind (alerts, escalations).",
            "topic_kind",
        )
        self.alerts = counter(
            registry,
            "larm_alerts_total",
            "Alert messages published, by alert kind and state (active, resolved).",
            "kind",
            "state",
        )
        self.outbox_pending = gauge(
            registry, "larm_outbox_pending_messages", "Messages waiting to be published."
        )
        self.sweep_seconds = histogram(
            registry,
            "larm_engine_sweep_duration_seconds",
            "Time of one sweep, by sweep.",
            "sweep",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.sweep_fired = counter(
            registry,
            "larm_engine_deadlines_fired_total",
            "Deadlines that fired, by sweep.",
            "sweep",
        )
        self.sweep_errors = counter(
            registry,
            "larm_engine_sweep_errors_total",
            "Sweeps that failed (retried next tick).",
            "sweep",
        )
        self.leader = gauge(
            registry,
            "larm_engine_leader",
            "1 while this engine owns the deadlines and the outbox, 0 while it stands by.",
        )
        self.last_tick = gauge(
            registry,
            "larm_engine_last_tick_timestamp_seconds",
            "Unix time of the last completed tick.",
        )
