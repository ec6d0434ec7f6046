"""Prometheus metrics of the gateway. Labels are bounded sets: protocol, result, transport."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.model import Protocol

# Every result a device message can have (the `result` label).
RESULTS = (
    "accepted",  # published, PUBACK'd, device acknowledged
    "duplicate",  # a repeat of a message already delivered (SOS Access: status 10)
    "too_often",  # SOS Access heartbeat faster than allowed (status 101)
    "time_rejected",  # DC-09 encrypted block outside the time window (NAK)
    "unknown_sender",
    "not_authorized",
    "malformed",
    "undecryptable",
    "busy",  # broker or registry away: the device was told (or left) to retry
)


class GatewayMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.messages = Counter(
            "larm_gateway_messages_total",
            "Device messages by protocol and result.",
            ["protocol", "result"],
            registry=registry,
        )
        self.events = Counter(
            "larm_gateway_events_published_total",
            "Contract events published (and acknowledged by the broker), by protocol and kind.",
            ["protocol", "kind"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "larm_gateway_publish_duration_seconds",
            "From a device message's arrival to the broker's PUBACK of its events.",
            ["protocol"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.connections = Gauge(
            "larm_gateway_open_connections",
            "Open TCP connections, by protocol.",
            ["protocol"],
            registry=registry,
        )
        self.broker_connected = Gauge(
            "larm_gateway_broker_connected",
            "1 while the gateway is connected to the MQTT broker.",
            registry=registry,
        )
        self.last_message = Gauge(
            "larm_gateway_last_message_timestamp_seconds",
            "Unix time of the last device message, by protocol.",
            ["protocol"],
            registry=registry,
        )
        # Every series exists from the start at 0, so rates and alerts see "none yet", not
        # "no data".
        for protocol in Protocol:
            self.publish_seconds.labels(protocol.value)
            self.connections.labels(protocol.value)
            for result in RESULTS:
                self.messages.labels(protocol.value, result)
