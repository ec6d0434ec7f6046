"""Prometheus metrics of the gateway. Labels are bounded sets (protocol, result, transport,
reason): never a sender id or an address."""

from __future__ import annotations

from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from gateway.model import Protocol
from larmkedja.metrics import counter, gauge, histogram

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
    "challenged",  # SCAIP: asked for its SIP digest credentials (401), the first leg of a login
)
TRANSPORTS = ("tcp", "udp")
# Why a connection or datagram was refused before it was read (`larm_gateway_refused_total`).
REFUSALS = ("capacity", "source_capacity")
# Why the gateway closed a connection (`larm_gateway_connections_cut_total`).
CUTS = ("slow", "idle", "lifetime")
M = TypeVar("M", bound=MetricWrapperBase)


class GatewayMetrics:
    def __init__(self, *, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self.messages = counter(
            registry,
            "larm_gateway_messages_total",
            "Device messages by protocol and result.",
            "protocol",
            "result",
        )
        self.events = counter(
            registry,
            "larm_gateway_events_published_total",
            "Contract events published (and acknowledged by the broker), by protocol and kind.",
            "protocol",
            "kind",
        )
        self.publish_seconds = histogram(
            registry,
            "larm_gateway_publish_duration_seconds",
            "From a device message's arrival to the broker's PUBACK of its events.",
            "protocol",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.connections = gauge(
            registry,
            "larm_gateway_open_connections",
            "Open TCP connections, by protocol.",
            "protocol",
        )
        self.broker_connected = gauge(
            registry,
            "larm_gateway_broker_connected",
            "1 while the gateway is connected to the MQTT broker.",
        )
        self.last_message = gauge(
            registry,
            "larm_gateway_last_message_timestamp_seconds",
            "Unix time of the last device message, by protocol.",
            "protocol",
        )
        self._protection(registry)
        self._every_series()

    def of(self, metric: M, *labels: str) -> M:
        """`metric.labels(*labels)`, looked up once (`labels` takes a lock and checks its
        arguments every time: per device message, that was a few per cent of the gateway)."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _protection(self, registry: CollectorRegistry) -> None:
        """What the caps, deadlines and dead-letter rate limits refuse (issue 18)."""
        self.refused = counter(
            registry,
            "larm_gateway_refused_total",
            "Connections closed at once and datagrams dropped, over the receiver's caps.",
            "protocol",
            "transport",
            "reason",
        )
        self.cut = counter(
            registry,
            "larm_gateway_connections_cut_total",
            "Connections the gateway closed: a message too slow, idle, or open too long.",
            "protocol",
            "reason",
        )
        self.dead_letters_suppressed = counter(
            registry,
            "larm_gateway_dead_letters_suppressed_total",
            "Refused messages not kept as dead letters: their source was over its rate.",
            "protocol",
        )

    def _every_series(self) -> None:
        """Every series exists from the start at 0, so rates and alerts see "none yet", not
        "no data"."""
        for protocol in Protocol:
            p = protocol.value
            self.publish_seconds.labels(p)
            self.connections.labels(p)
            self.dead_letters_suppressed.labels(p)
            for result in RESULTS:
                self.messages.labels(p, result)
            for transport in TRANSPORTS:
                for reason in REFUSALS:
                    self.refused.labels(p, transport, reason)
            for reason in CUTS:
                self.cut.labels(p, reason)
