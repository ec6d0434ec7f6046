"""The outbox's paths with a silent broker (a partition the keepalive has not noticed yet): the
engine's tick is held for the publish timeout once, not at every tick, and the other path
carries the outbox from the next tick on. Fakes stand in for paho and the database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

from paho.mqtt.client import Client
from prometheus_client import CollectorRegistry

from alarms.runtime.metrics import EngineMetrics
from alarms.runtime.outbox_paho import OutboxPaths
from larmkedja.db import Conn


class _Info:
    def __init__(self, *, acked: bool) -> None:
        self.acked = acked

    def wait_for_publish(self, timeout: float | None = None) -> None:
        return None  # a silent broker: the wait runs out (here at once)

    def is_published(self) -> bool:
        return self.acked


class _Broker:
    """A paho client as the outbox uses it: `publish` answered (or not) by the broker."""

    def __init__(self, *, silent: bool) -> None:
        self.silent = silent
        self.publishes = 0
        self.on_connect: Any = None
        self.on_disconnect: Any = None

    def publish(self, topic: str, payload: bytes, qos: int) -> _Info:
        self.publishes += 1
        return _Info(acked=not self.silent)

    def connect(self) -> None:
        self.on_connect(self, None, {}, _Success(), None)


class _Success:
    is_failure = False


class _Outbox:
    """The outbox table: one row pending until a publish of it is marked."""

    def __init__(self) -> None:
        self.pending = True

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield

    def execute(self, sql: str, params: Any = None) -> _Outbox:
        self._last = sql
        if sql.lstrip().startswith("UPDATE outbox"):
            self.pending = False
        return self

    def fetchall(self) -> list[tuple[int, str, dict[str, str]]]:
        return [(1, "larm/v1/s1/alerts", {"kind": "x"})] if self.pending else []


def _paths(*brokers: _Broker) -> OutboxPaths:
    paths = OutboxPaths(
        clients=[cast(Client, b) for b in brokers],
        metrics=EngineMetrics(registry=CollectorRegistry()),
    )
    for b in brokers:
        b.connect()
    return paths


def _tick(paths: OutboxPaths, outbox: _Outbox) -> None:
    paths.publish_pending(cast(Conn, outbox), fence=lambda conn: None)


def test_a_silent_path_is_tried_once_then_rests_while_the_other_carries_the_outbox() -> None:
    silent, healthy = _Broker(silent=True), _Broker(silent=False)
    paths = _paths(silent, healthy)
    outbox = _Outbox()
    _tick(paths, outbox)  # the silent path first, then the other in the same tick
    assert (silent.publishes, healthy.publishes, outbox.pending) == (1, 1, False)
    outbox.pending = True
    _tick(paths, outbox)  # straight to the other path
    assert (silent.publishes, healthy.publishes, outbox.pending) == (1, 2, False)


def test_one_silent_path_holds_one_tick_not_every_tick_until_it_connects_again() -> None:
    broker = _Broker(silent=True)
    paths = _paths(broker)
    outbox = _Outbox()
    for _ in range(5):
        _tick(paths, outbox)
    assert broker.publishes == 1, "every tick waited for the silent broker"
    assert outbox.pending
    broker.silent = False
    broker.connect()  # paho noticed and reconnected: the path is used at once
    _tick(paths, outbox)
    assert broker.publishes == 2
    assert not outbox.pending
