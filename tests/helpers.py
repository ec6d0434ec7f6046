"""Helpers for tests that talk to the real broker and database."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client import CollectorRegistry

from alarms.runtime.sweep import Sweep
from ingest.metrics import IngestMetrics
from ingest.service import Ingest
from ingest.store_psycopg import EventStore
from larmkedja import db
from larmkedja.events import DeviceEvent, Kind
from larmkedja.settings import Settings

# The processes' own database roles (migration 0007), with passwords for this test session.
ROLE_PASSWORDS = {role: secrets.token_urlsafe(12) for role in db.ROLES}


def role_url(database_url: str, role: str) -> str:
    """The same database, as one of the roles (the owner's URL in, the role's URL out)."""
    parts = urlsplit(database_url)
    netloc = f"{role}:{quote(ROLE_PASSWORDS[role], safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def as_role(settings: Settings, role: str) -> Settings:
    """`settings` of a process that connects as `role` (as the processes of `make up` do)."""
    return settings.model_copy(update={"database_url": role_url(settings.database_url, role)})


def settings_for(database_url: str, host: str, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "mqtt_host": host,
        "mqtt_port": port,
        "ingest_instance": uuid.uuid4().hex[:8],
        "ingest_metrics_port": 0,
    }
    values.update(overrides)
    return Settings(**values)


def make_event(
    device_id: str = "d-1",
    kind: Kind = Kind.HEARTBEAT,
    data: dict[str, Any] | None = None,
    *,
    ts: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> DeviceEvent:
    return DeviceEvent.create(device_id, kind, data, ts=ts, event_id=event_id)


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def wait_until_async(
    predicate: Callable[[], bool], *, within: float, what: str = "condition"
) -> None:
    """`wait_until` for a coroutine: the event loop runs while it waits (a client driven by
    the loop, such as the gateway's publisher, makes progress only then)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {within} s waiting for {what}")


def assert_sweep_skips_a_held_row(database_url: str, sweep: Sweep, *, due: str, hold: str) -> None:
    """`due` makes three rows due for `sweep`; `hold` changes one of them in a transaction of
    its own and keeps it open, as ingest does with a batch. The sweep takes the other two without
    waiting for it (a wait deadlocked with ingest), then, once the holder rolled back, the
    third, which is still due."""
    with psycopg.connect(database_url, autocommit=True) as setup:
        setup.execute(due)
    with psycopg.connect(database_url) as holder, psycopg.connect(database_url) as engine:
        holder.execute(hold)
        engine.execute("SET lock_timeout = '2s'")
        assert sweep.run(engine) == 2  # without waiting for the held row
        engine.commit()
        holder.rollback()
        assert sweep.run(engine) == 1
        engine.commit()


def publisher(
    host: str, port: int, client_id: str | None = None, auth: tuple[str, str] | None = None
) -> Client:
    client = Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or f"test-pub-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    if auth:
        client.username_pw_set(*auth)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    return client


NO_MATCHING_SUBSCRIBERS = 0x10


def publish_all(
    host: str,
    port: int,
    messages: Iterable[tuple[str, bytes]],
    qos: int = 1,
    auth: tuple[str, str] | None = None,
    careless: list[int] | None = None,
) -> int:
    """Publish and wait for every PUBACK, as a careful device does: a PUBACK saying "no
    matching subscribers" (0x10: the broker restarted and ingest has not subscribed again)
    means nobody has it, so it is sent again. Returns how many were sent. At most 20,000 are
    in flight at once (paho has 65,535 packet ids and refuses more). With `careless` (a list),
    it behaves as an MQTT 3.1.1 device must, never sending again, and appends how many
    messages nobody got."""
    client = publisher(host, port, auth=auth)
    unheard: set[int] = set()
    lock = threading.Lock()

    def on_publish(c: Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        if getattr(rc, "value", 0) == NO_MATCHING_SUBSCRIBERS:
            with lock:
                unheard.add(mid)

    client.on_publish = on_publish
    pending = list(messages)
    total = len(pending)
    try:
        for _ in range(600):
            retry: list[tuple[str, bytes]] = []
            for start in range(0, len(pending), 20_000):
                chunk = pending[start : start + 20_000]
                infos = [client.publish(topic, payload, qos=qos) for topic, payload in chunk]
                _wait_all(infos)
                with lock:
                    retry += [m for m, i in zip(chunk, infos, strict=True) if i.mid in unheard]
                    unheard.clear()
            if careless is not None:
                careless.append(len(retry))
                break
            if not retry:
                break
            pending = retry
            time.sleep(0.1)
        else:
            raise AssertionError("messages nobody subscribed to for a minute")
        return total
    finally:
        client.disconnect()
        client.loop_stop()


def _wait_all(infos: list[Any]) -> None:
    for info in infos:
        info.wait_for_publish(timeout=60)
        assert info.is_published(), "a publish was not acknowledged by the broker"


class Subscriber:
    """Collects what arrives on a topic filter (for alert, escalation, dead-letter topics)."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: list[MQTTMessage] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-sub-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(host, port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(5), "subscription not acknowledged"

    def _on_message(self, client: Client, userdata: Any, msg: MQTTMessage) -> None:
        with self._lock:
            self.messages.append(msg)

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [bytes(m.payload) for m in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def running_ingest(settings: Settings) -> Iterator[Ingest]:
    """The ingest service in a thread of this process."""
    from entrypoints.bootstrap import processors

    settings = as_role(settings, "larm_ingest")
    ingest = Ingest(
        settings=settings,
        store_factory=lambda: EventStore(
            conninfo=settings.database_url, processors=processors(settings)
        ),
        metrics=IngestMetrics(registry=CollectorRegistry()),
    )
    thread = threading.Thread(target=ingest.run, name="ingest", daemon=True)
    thread.start()
    try:
        wait_until(lambda: ingest.connected, timeout=10, what="ingest connected")
        yield ingest
    finally:
        ingest.stop()
        thread.join(timeout=15)
        assert not thread.is_alive(), "ingest did not stop"


def scalar(database_url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql.encode(), params).fetchone()
        return row[0] if row else None


@contextmanager
def running_api(settings: Settings) -> Iterator[str]:
    """The API on a free loopback port, served by uvicorn in a thread; yields its base URL."""
    import asyncio

    import uvicorn

    from api.app import create_app
    from devstack.procs import free_port

    port = free_port()
    config = uvicorn.Config(
        create_app(settings=as_role(settings, "larm_api")),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="websockets-sansio",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=10, what="api started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def running_engine(settings: Settings) -> Iterator[Any]:
    """The engine in a thread of this process (real broker, real database)."""
    from alarms.runtime.engine import Engine
    from alarms.runtime.metrics import EngineMetrics
    from entrypoints.bootstrap_engine import sweeps
    from larmkedja.mqtt_paho import make_client

    settings = as_role(settings, "larm_engine")
    registry = CollectorRegistry()
    metrics = EngineMetrics(registry=registry)
    client_id = f"test-engine-{uuid.uuid4().hex[:6]}"
    first, *more = [  # a client per receiving path, as entrypoints/bootstrap.py makes them
        make_client(settings=settings, client_id=client_id) for _ in settings.broker_paths()
    ]
    engine = Engine(
        settings=settings,
        sweeps=sweeps(settings, registry),
        client=first,
        more_clients=more,
        metrics=metrics,
    )
    thread = threading.Thread(target=engine.run, name="engine", daemon=True)
    thread.start()
    try:
        wait_until(lambda: engine.ticks > 0, timeout=10, what="engine ticking")
        yield engine
    finally:
        engine.stop()
        thread.join(timeout=15)
        assert not thread.is_alive(), "engine did not stop"


def token(settings: Settings, role: str, name: str | None = None) -> dict[str, str]:
    """Authorization headers for a new token of `role`."""
    from api.tokens_admin import create

    secret = create(settings, role=role, name=name or f"{role}-{uuid.uuid4().hex[:4]}")
    return {"Authorization": f"Bearer {secret}"}


def psycopg_rows(
    database_url: str, sql: str, params: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return list(conn.execute(sql.encode(), params).fetchall())
