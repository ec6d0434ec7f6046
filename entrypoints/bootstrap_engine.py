"""The engine's composition: which sweeps it runs each tick, and the process built from its
settings (`entrypoints/bootstrap.py` says why each process has its own module)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from alarms.devices.sweeps_psycopg import OfflineSweep, PowerCutSweep
from alarms.devices.tests_due_psycopg import DueTestSweep
from alarms.night.sweeps_psycopg import CameraSweep, CheckDeadlineSweep, MaterialiseSweep
from alarms.patrol.sweeps_psycopg import UnacknowledgedSweep
from alarms.people.sweeps_psycopg import HandoverSweep
from alarms.queue.incidents_psycopg import IncidentSweep
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
from entrypoints.bootstrap import metrics_registry
from larmkedja import db
from larmkedja.mqtt_paho import make_client
from larmkedja.settings import Settings


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


def engine(settings: Settings) -> Engine:
    """The engine process: deadlines and the outbox."""
    db.prepare(settings)
    registry = metrics_registry(settings.engine_metrics_port, settings.engine_metrics_host)
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
