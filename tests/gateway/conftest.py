"""The gateway on the real stack: Mosquitto, TimescaleDB, ingest, and the gateway's receivers
on free loopback ports, driven by clients nobody here wrote (sipp, sos-access, dc09-spt)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from devstack.procs import free_port
from gateway import admin
from gateway.app import Running, start
from gateway.metrics import GatewayMetrics
from larmkedja.settings import Settings
from tests.conftest import Broker
from tests.gateway.crypto_shim import install
from tests.helpers import as_role, running_ingest, scalar, settings_for, wait_until

install()  # before anything imports dc09_spt


@dataclass
class GatewayStack:
    settings: Settings
    running: Running
    metrics: GatewayMetrics

    @property
    def host(self) -> str:
        return self.settings.gateway_host

    def port(self, protocol: str) -> int:
        return self.running.ports[protocol]

    def add(self, protocol: str, sender: str, device: str, **kw: Any) -> dict[str, object]:
        return admin.add(
            self.settings, protocol=protocol, sender_id=sender, site="gw", device_id=device, **kw
        )

    def events(self, device: str, kind: str | None = None) -> int:
        sql = "SELECT count(*) FROM events WHERE device_id = %s"
        if kind is None:
            return int(scalar(self.settings.database_url, sql, (device,)))
        sql += " AND kind = %s"
        return int(scalar(self.settings.database_url, sql, (device, kind)))

    def open_alarms(self, device: str) -> int:
        sql = "SELECT count(*) FROM alarms WHERE device_id = %s AND state <> 'resolved'"
        return int(scalar(self.settings.database_url, sql, (device,)))

    def dead_letters(self, reason: str) -> int:
        sql = "SELECT count(*) FROM dead_letters WHERE reason = %s"
        return int(scalar(self.settings.database_url, sql, (f"gateway.{reason}",)))

    def result_count(self, protocol: str, result: str) -> float:
        return self.metric("larm_gateway_messages_total", protocol=protocol, result=result)

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def wait_events(self, device: str, count: int, kind: str | None = None) -> None:
        wait_until(
            lambda: self.events(device, kind) >= count, timeout=10, what=f"{count} {kind} events"
        )


SERVER_KEY = "a test server key, 32 characters or more"
DEAD_LETTERS_PER_MINUTE = 10  # per source address


def gateway_settings(database_url: str, broker: Broker, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "gateway_scaip_port": free_port(),
        "gateway_sos_access_port": free_port(),
        "gateway_dc09_port": free_port(),
        "gateway_metrics_port": 0,
        "gateway_instance": "t",
        "gateway_secret_key": SERVER_KEY,
        "gateway_dead_letters_per_minute": DEAD_LETTERS_PER_MINUTE,
    }
    return settings_for(database_url, broker.host, broker.port, **(values | overrides))


class _GatewayThread:
    """The gateway's event loop in a thread of this process."""

    def __init__(self, settings: Settings, metrics: GatewayMetrics) -> None:
        self.loop = asyncio.new_event_loop()
        self.settings = settings
        self.metrics = metrics
        self.running: Running | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="gateway", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        own = as_role(self.settings, "larm_gateway")  # its own role, as `make up` runs it
        self.running = self.loop.run_until_complete(start(own, metrics=self.metrics))
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.running.close())
        self.loop.close()

    def __enter__(self) -> Running:
        self.thread.start()
        assert self.ready.wait(15), "gateway did not start"
        assert self.running is not None
        running = self.running
        wait_until(lambda: running.gateway.publisher.connected, timeout=10, what="gateway MQTT")
        return running

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "gateway did not stop"


@contextmanager
def gateway_stack(database_url: str, broker: Broker, **overrides: Any) -> Iterator[GatewayStack]:
    """Ingest and a gateway with these settings (the tests' own caps and deadlines)."""
    settings = gateway_settings(database_url, broker, **overrides)
    metrics = GatewayMetrics(registry=CollectorRegistry())
    with running_ingest(settings), _GatewayThread(settings, metrics) as running:
        yield GatewayStack(settings=settings, running=running, metrics=metrics)


@pytest.fixture
def gw(database_url: str, broker: Broker) -> Iterator[GatewayStack]:
    with gateway_stack(database_url, broker) as stack:
        yield stack
