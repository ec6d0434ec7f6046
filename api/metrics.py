"""Prometheus metrics of the API: answer times as operators answer, actions, sign-ins, the live
stream. Labels: bounded sets only."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from larmkedja.metrics import counter, gauge, histogram

ANSWER_TIME_BUCKETS = (5, 10, 20, 33, 45, 60, 90, 120, 180, 300, 600)


class ApiMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.answer_time = histogram(
            registry,
            "larm_alarm_answer_time_seconds",
            "Answer time of safety alarms: first event received → answered.",
            buckets=ANSWER_TIME_BUCKETS,
        )
        self.actions = counter(
            registry,
            "larm_api_actions_total",
            "Operator and patrol actions, by action and result.",
            "action",
            "result",
        )
        self.auth_failures = counter(
            registry,
            "larm_api_auth_failures_total",
            "Refused authentications, by reason.",
            "reason",
        )
        self.arrival = histogram(
            registry,
            "larm_escalation_arrival_seconds",
            "Night patrol: escalation created → arrived at the door.",
            buckets=(60, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200),
        )
        self.stream_clients = gauge(
            registry, "larm_api_stream_clients", "Open WebSocket stream connections."
        )
