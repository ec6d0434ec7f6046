"""The composition root: which processors and sweeps each process runs, and each process built
from its settings and adapters (in the manner of cosmicpython's `bootstrap.py`). The entry
points (`entrypoints/cli.py`) only call these; nothing else in the project wires processes."""

from __future__ import annotations

import gc
import sys
from typing import Protocol

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, start_http_server

from alarms.devices.processor_psycopg import DeviceProcessor
from alarms.devices.sweeps_psycopg import OfflineSweep, PowerCutSweep
from alarms.devices.tests_due_psycopg import DueTestSweep
from alarms.night.processor_psycopg import SupervisionProcessor
from alarms.night.sweeps_psycopg import CameraSweep, CheckDeadlineSweep, MaterialiseSweep
from alarms.patrol.sweeps_psycopg import UnacknowledgedSweep
from alarms.people.sweeps_psycopg import HandoverSweep
from alarms.queue.incidents_psycopg import IncidentSweep
from alarms.queue.processor_psycopg import AlarmProcessor
from alarms.queue.sweeps_psycopg import (
    AnswerTimeSweep,
    QueueGauges,
    StaleSweep,
    UnansweredSweep,
)
from alarms.reports.gauges_psycopg import ServiceLevelGauges
from alarms.runtime.engine import Engine
from alarms.runtime.gauges_psycopg import GaugeSweep
from alarms.runtime.metrics import EngineMetrics
from alarms.runtime.retention_psycopg import RetentionSweep
from alarms.runtime.sweep import Sweep
from alarms.selfwatch.sweeps_psycopg import SilenceSweep
from api.app import create_app
from ingest.metrics import IngestMetrics
from ingest.service import Ingest
from ingest.store_psycopg import EventStore, Processor
from larmkedja import db
from larmkedja.mqtt_paho import make_client
from larmkedja.settings import Settings


class Service(Protocol):
    """A long-lived process: runs until `stop()`, then ends what it holds cleanly."""

    def run(self) -> None: ...

    def stop(self) -> None: ...


def processors(settings: Settings) -> list[Processor]:
    """What ingest does, in its transaction, with each new event."""
    return [
        DeviceProcessor(settings=settings),
        AlarmProcessor(settings=settings),
        SupervisionProcessor(settings=settings),
    ]


def sweeps(settings: Settings, registry: CollectorRegistry) -> list[Sweep]:
    """The engine's deadline sweeps, in the order they run each tick."""
    return [
        OfflineSweep(settings=settings),
        PowerCutSweep(settings=settings),
        UnansweredSweep(settings=settings),
        StaleSweep(settings=settings),
        IncidentSweep(settings=settings),
        DueTestSweep(settings=settings),
        MaterialiseSweep(),
        CheckDeadlineSweep(settings=settings),
        CameraSweep(settings=settings),
        UnacknowledgedSweep(settings=settings),
        HandoverSweep(settings=settings),
        AnswerTimeSweep(settings=settings, registry=registry),
        SilenceSweep(settings=settings, registry=registry),
        QueueGauges(registry=registry),
        GaugeSweep(settings=settings, registry=registry),
        ServiceLevelGauges(settings=settings, registry=registry),
        RetentionSweep(settings=settings),
    ]


def _metrics_registry(port: int, host: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    if port:
        start_http_server(port, addr=host, registry=registry)
    return registry


def tune_gc() -> None:
    """Ingest allocates many short-lived objects per message; the default collector thresholds
    spend ~40 % of parse time collecting. Freeze what start-up made and collect less often.
    The gateway too: without it a full collection went through everything its imports made,
    up to 95 ms while every panel waited (4 of them in the bench's 20,000 blocks)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _tune_threads() -> None:
    """Ingest's threads take turns on the GIL; a thread waiting for it (the alarm lane's
    writer between two statements, paho's reader with an alarm in hand) waits up to the
    switch interval for every turn. 5 ms (CPython's default) per statement of the alarm's
    transaction was most of an alarm's latency under heartbeat load; 0.5 ms costs the
    busy threads a little more switching."""
    sys.setswitchinterval(0.0005)


def ingest(settings: Settings) -> Ingest:
    """The ingest process: its store runs the processors in the same transaction."""
    db.prepare(settings)
    registry = _metrics_registry(settings.ingest_metrics_port, settings.ingest_metrics_host)
    service = Ingest(
        settings=settings,
        store_factory=lambda: EventStore(
            conninfo=settings.database_url,
            processors=processors(settings),
            deadline_s=settings.db_deadline_s,
        ),
        metrics=IngestMetrics(registry=registry),
    )
    tune_gc()
    _tune_threads()
    return service


def engine(settings: Settings) -> Engine:
    """The engine process: deadlines and the outbox."""
    db.prepare(settings)
    registry = _metrics_registry(settings.engine_metrics_port, settings.engine_metrics_host)
    metrics = EngineMetrics(registry=registry)
    client_id = f"larmkedja-engine-{settings.engine_instance}"
    first, *more = [
        make_client(settings=settings, client_id=client_id) for _ in settings.broker_paths()
    ]
    return Engine(
        settings=settings,
        sweeps=sweeps(settings, registry),
        client=first,
        more_clients=more,
        metrics=metrics,
        instance=settings.engine_instance,
    )


def api(settings: Settings) -> FastAPI:
    db.prepare(settings)
    return create_app(settings=settings)


def serve_api(settings: Settings) -> None:
    uvicorn.run(
        api(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        limit_concurrency=settings.api_max_connections,
    )
