"""The composition root: each process built from its settings and adapters (in the manner of
cosmicpython's `bootstrap.py`). This module builds ingest (which processors it runs) and holds
what every process shares; `bootstrap_engine.py` builds the engine (which sweeps it runs) and
`bootstrap_api.py` the API. The entry points (`entrypoints/cli.py`) only call these; nothing
else in the project wires processes.

One module per process so that a process imports only what it runs: `larmkedja ingest` took
2.1 s of CPU to start when it imported FastAPI, the API and the engine's sweeps with it, 0.6 s
without (a restarted ingest is reading again that much sooner; `tests/unit/test_imports.py`)."""

from __future__ import annotations

import gc
import sys
from typing import Protocol

from prometheus_client import CollectorRegistry, start_http_server

from alarms.devices.processor_psycopg import DeviceProcessor
from alarms.night.processor_psycopg import SupervisionProcessor
from alarms.queue.processor_psycopg import AlarmProcessor
from ingest.metrics import IngestMetrics
from ingest.service import Ingest
from ingest.store_psycopg import EventStore, Processor
from larmkedja import db
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


def metrics_registry(port: int, host: str) -> CollectorRegistry:
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
    registry = metrics_registry(settings.ingest_metrics_port, settings.ingest_metrics_host)
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
