"""Prometheus metrics of the engine and of the alarm chain. Labels: bounded sets only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ANSWER_TIME_BUCKETS = (5, 10, 20, 33, 45, 60, 90, 120, 180, 300, 600)


class EngineMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.open_alarms = Gauge(
            "larm_alarms_open",
            "Open alarms (not resolved), by priority.",
            ["priority"],
            registry=registry,
        )
        self.unanswered = Gauge(
            "larm_alarms_unanswered", "Alarms nobody has answered yet.", registry=registry
        )
        self.oldest_unanswered = Gauge(
            "larm_alarm_oldest_unanswered_seconds",
            "Age of the oldest unanswered alarm (0 when none waits).",
            registry=registry,
        )
        self.rolling_mean = Gauge(
            "larm_answer_time_rolling_mean_seconds",
            "Mean answer time over LARM_ANSWER_WINDOW_S, all sites (NaN without answers).",
            registry=registry,
        )
        self.answer_target = Gauge(
            "larm_answer_time_target_seconds",
            "The answer-time target (LARM_ANSWER_TARGET_S).",
            registry=registry,
        )
        self.published = Counter(
            "larm_outbox_published_total",
            "Messages published from the outbox, by topic kind (alerts, escalations).",
            ["topic_kind"],
            registry=registry,
        )
        self.alerts = Counter(
            "larm_alerts_total",
            "Alert messages published, by alert kind and state (active, resolved).",
            ["kind", "state"],
            registry=registry,
        )
        self.outbox_pending = Gauge(
            "larm_outbox_pending_messages", "Messages waiting to be published.", registry=registry
        )
        self.sweep_seconds = Histogram(
            "larm_engine_sweep_duration_seconds",
            "Time of one sweep, by sweep.",
            ["sweep"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.sweep_fired = Counter(
            "larm_engine_deadlines_fired_total",
            "Deadlines that fired, by sweep.",
            ["sweep"],
            registry=registry,
        )
        self.sweep_errors = Counter(
            "larm_engine_sweep_errors_total",
            "Sweeps that failed (retried next tick).",
            ["sweep"],
            registry=registry,
        )
        self.silent = Gauge(
            "larm_system_silent",
            "1 while the system is silent (no ingest, stalled commits, or no device events).",
            registry=registry,
        )
        self.last_tick = Gauge(
            "larm_engine_last_tick_timestamp_seconds",
            "Unix time of the last completed tick.",
            registry=registry,
        )


class ApiMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.answer_time = Histogram(
            "larm_alarm_answer_time_seconds",
            "Answer time of safety alarms: first event received → answered.",
            buckets=ANSWER_TIME_BUCKETS,
            registry=registry,
        )
        self.actions = Counter(
            "larm_api_actions_total",
            "Operator and patrol actions, by action and result.",
            ["action", "result"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "larm_api_auth_failures_total",
            "Refused authentications, by reason.",
            ["reason"],
            registry=registry,
        )
        self.arrival = Histogram(
            "larm_escalation_arrival_seconds",
            "Night patrol: escalation created → arrived at the door.",
            buckets=(60, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200),
            registry=registry,
        )
        self.stream_clients = Gauge(
            "larm_api_stream_clients", "Open WebSocket stream connections.", registry=registry
        )
