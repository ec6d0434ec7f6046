"""Prometheus metrics, one line each: every process declares its counters, gauges and
histograms through these, on its own registry (no global one: two processes in one test never
share a series). Labels are bounded sets only; never a device id, address or name."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


def counter(registry: CollectorRegistry, name: str, doc: str, *labels: str) -> Counter:
    return Counter(name, doc, labels, registry=registry)


def gauge(registry: CollectorRegistry, name: str, doc: str, *labels: str) -> Gauge:
    return Gauge(name, doc, labels, registry=registry)


def histogram(
    registry: CollectorRegistry,
    name: str,
    doc: str,
    *labels: str,
    buckets: Sequence[float],
) -> Histogram:
    return Histogram(name, doc, labels, buckets=buckets, registry=registry)
