"""Exactly one engine owns the deadlines, and a deposed one changes nothing
(alarms/runtime/leadership_psycopg.py). Engines here are driven tick by tick in this process;
tests/faults/test_engine_standby.py does the same with processes and signals."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import CollectorRegistry

from alarms.queue.sweeps_psycopg import UnansweredSweep
from alarms.runtime.engine import Engine
from alarms.runtime.leadership_psycopg import Deposed
from alarms.runtime.metrics import EngineMetrics
from larmkedja.settings import Settings
from tests.conftest import Broker
from tests.helpers import as_role, scalar, settings_for, wait_until

OVERDUE_ALARM = """
INSERT INTO alarms (site, device_id, kind, priority, state, raised_at, last_event_at,
                    unanswered_due_at)
VALUES ('lead', %s, 'alarm.button', 1, 'raised', now() - interval '1 min', now(),
        now() - interval '1 s')
"""
FIRED = "SELECT unanswered_alerts FROM alarms WHERE device_id = %s"


class _Offline(Client):
    """A client that never connects: the outbox stays pending, the sweeps are what counts."""

    def __init__(self) -> None:
        super().__init__(callback_api_version=CallbackAPIVersion.VERSION2)


@contextmanager
def engine(settings: Settings, instance: str) -> Iterator[Engine]:
    metrics = EngineMetrics(registry=CollectorRegistry())
    e = Engine(
        settings=settings,
        sweeps=[UnansweredSweep(settings=settings)],
        client=_Offline(),
        metrics=metrics,
        instance=instance,
    )
    try:
        yield e
    finally:
        e.close()


def overdue(database_url: str) -> str:
    device = f"d-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(database_url) as conn:
        conn.execute(OVERDUE_ALARM, (device,))
    return device


def ticks_until_leading(e: Engine, *, most: int = 20) -> int:
    for n in range(1, most + 1):
        e.tick()
        if e.leading:
            return n
        time.sleep(0.1)
    return most + 1


@pytest.fixture
def settings(database_url: str, broker: Broker) -> Settings:
    s = settings_for(database_url, broker.host, broker.port, engine_lease_s=1.0)
    return as_role(s, "larm_engine")


def test_one_of_two_engines_owns_the_deadlines(database_url: str, settings: Settings) -> None:
    with engine(settings, "a") as a, engine(settings, "b") as b:
        a.tick()
        b.tick()
        assert (a.leading, b.leading) == (True, False)
        device = overdue(database_url)
        b.tick()
        assert scalar(database_url, FIRED, (device,)) == 0, "the standby fired"
        a.tick()
        assert scalar(database_url, FIRED, (device,)) == 1
        epoch = scalar(database_url, "SELECT epoch FROM engine_leadership")
        a.close()  # the owner goes: the standby takes over within a tick or two, a new epoch
        assert ticks_until_leading(b) <= 3
        assert scalar(database_url, "SELECT epoch FROM engine_leadership") == epoch + 1
        assert scalar(database_url, "SELECT instance FROM engine_leadership") == "b"


class _SlowSweep:
    """A sweep whose transaction takes a while: every commit of a slow disk does."""

    name = "slow"

    def run(self, conn: psycopg.Connection[tuple[object, ...]]) -> int:
        conn.execute("SELECT pg_sleep(0.4)")
        return 0


def test_a_tick_longer_than_the_lease_keeps_the_lock(database_url: str, settings: Settings) -> None:
    """The owner is slow, not hung: four sweeps of 0.4 s make a tick longer than the 1 s
    lease (a slow disk on the primary, make test-ha). It says a word on its lock session as it
    enters each transaction, so the lease never runs out and the standby never takes over
    (with a word once a tick the two took turns, an election a tick)."""
    metrics = EngineMetrics(registry=CollectorRegistry())
    slow = Engine(
        settings=settings,
        sweeps=[_SlowSweep() for _ in range(4)],
        client=_Offline(),
        metrics=metrics,
        instance="a",
    )
    try:
        with engine(settings, "b") as b:
            slow.tick()
            assert slow.leading
            epoch = scalar(database_url, "SELECT epoch FROM engine_leadership")
            for _ in range(2):
                slow.tick()
                b.tick()
                assert slow.leading and not b.leading, "the standby took over from a slow owner"
            assert scalar(database_url, "SELECT epoch FROM engine_leadership") == epoch
    finally:
        slow.close()


def test_a_deposed_engine_that_wakes_up_fires_nothing(
    database_url: str, settings: Settings
) -> None:
    """The owner hangs after it checked its lock (SIGSTOP, a frozen VM): the server ends its
    lock session after the lease; the standby takes over and fires what is due. The old owner
    wakes up with its working connection still open and runs its sweeps: the epoch stops it."""
    with engine(settings, "a") as a, engine(settings, "b") as b:
        a.tick()
        assert a.leading
        time.sleep(1.0)  # a says nothing on its lock session for as long as the lease …
        assert ticks_until_leading(b) <= 10, "the standby did not take over from a hung owner"
        device = overdue(database_url)
        with pytest.raises(Deposed):
            a._sweep(a._require())  # where a stood when it hung: past its lock check
        assert scalar(database_url, FIRED, (device,)) == 0, "the deposed engine fired"
        b.tick()
        assert scalar(database_url, FIRED, (device,)) == 1
        a.tick()  # and a tick of its own finds out and stands by
        assert not a.leading
        b.tick()
        assert scalar(database_url, FIRED, (device,)) == 1


def test_a_new_owner_waits_for_the_old_owners_transaction(
    database_url: str, settings: Settings
) -> None:
    """The old owner's transaction in flight holds the leadership row: the new owner takes
    office only once it ended, so the two never change things at the same time. (With a lease
    longer than the test takes: the server would end a's idle transaction after the lease.)"""
    settings = settings.model_copy(update={"engine_lease_s": 30.0})
    with engine(settings, "a") as a, engine(settings, "b") as b:
        a.tick()
        conn = a._require()
        with conn.transaction():
            a._leadership.fence(conn)  # a is inside a sweep's transaction …
            a._leadership.release()  # … and its lock session is gone
            b.tick()
            assert not b.leading, "b took office while a's transaction was open"
        b.tick()
        assert b.leading


def test_retention_never_holds_the_engine_for_a_lock(database_url: str, settings: Settings) -> None:
    """Retention runs in the engine's tick before nothing it could delay for long: when a table
    it must touch is locked (ingest's batch held up by a slow database), it gives up after a
    moment and tries again later (it once kept `system.silent` from firing)."""
    from alarms.runtime.retention_psycopg import LOCK_WAIT_MS, RetentionSweep
    from larmkedja import db_connect

    sweep = RetentionSweep(settings=settings)
    with (
        psycopg.connect(database_url) as holder,
        db_connect.connect(settings.database_url, autocommit=True) as conn,
    ):
        holder.execute("LOCK TABLE event_ids IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with conn.transaction():
            assert sweep.run(conn) == 0
            conn.execute("SELECT 1")  # the engine's transaction goes on
        assert time.monotonic() - started < LOCK_WAIT_MS / 1000 + 2
        holder.rollback()
        assert sweep.run(conn) == 0  # not again at once: in a minute


def test_an_engine_whose_session_the_server_ended_in_a_transaction_reconnects(
    settings: Settings,
) -> None:
    """The owner hangs inside a transaction past the lease (SIGSTOP while it publishes its
    outbox and waits for the broker's PUBACKs; tests/faults/test_engine_standby.py caught it
    once): the server ends the session (`idle_in_transaction_session_timeout`), and psycopg
    raises that as an InternalError, not an OperationalError. The engine died of it; it must
    reconnect and go on ticking."""
    with engine(settings, "a") as a:
        publish = a._publish
        hung = threading.Event()

        def publish_after_a_hang(conn: psycopg.Connection[tuple[object, ...]]) -> None:
            if not hung.is_set():
                hung.set()
                with conn.transaction():
                    conn.execute("SELECT 1")
                    time.sleep(settings.engine_lease_s + 1.0)
                    conn.execute("SELECT 1")
            publish(conn)

        a._publish = publish_after_a_hang  # type: ignore[method-assign]
        died: list[BaseException] = []

        def run() -> None:
            try:
                a.run()
            except BaseException as exc:
                died.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        try:
            wait_until(hung.is_set, timeout=5, what="the hang")
            ticks = a.ticks
            wait_until(lambda: a.ticks > ticks + 2 or bool(died), timeout=15, what="ticks")
            assert not died, f"the engine died of {died[0]!r}"
            assert a.leading
        finally:
            a.stop()
            thread.join(timeout=10)


def test_a_session_ended_inside_a_sweep_is_a_lost_connection_not_a_sweep_fault(
    settings: Settings,
) -> None:
    """The same hang inside a sweep's transaction: the engine reconnects, as above, and does
    not log and count it as that sweep's failure (the next sweep would only have found the
    connection closed)."""
    with engine(settings, "a") as a:
        sweep = a._sweeps[0]
        run_sweep = sweep.run
        hung = threading.Event()

        def run_after_a_hang(conn: psycopg.Connection[tuple[object, ...]]) -> int:
            if not hung.is_set():
                hung.set()
                time.sleep(settings.engine_lease_s + 1.0)
                conn.execute("SELECT 1")
            return run_sweep(conn)

        sweep.run = run_after_a_hang  # type: ignore[method-assign]
        thread = threading.Thread(target=a.run)
        thread.start()
        try:
            wait_until(hung.is_set, timeout=5, what="the hang")
            ticks = a.ticks
            wait_until(lambda: a.ticks > ticks + 2, timeout=15, what="ticks after the hang")
            assert a.leading
            errors = a._metrics.sweep_errors.labels(sweep.name)._value.get()
            assert errors == 0, "a session the server ended was counted as a sweep failure"
        finally:
            a.stop()
            thread.join(timeout=10)
