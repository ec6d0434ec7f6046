"""Fault 3: PostgreSQL stopped for 30 s in the middle of a burst. Ingest holds its acks, backs
off, reconnects and catches up; alarms raised during the outage reach the queue."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.postgres import Postgres
from devstack.procs import free_port
from larmkedja import db
from larmkedja.events import Kind
from tests.conftest import Broker
from tests.faults.burst import Burst
from tests.faults.conftest import Services
from tests.helpers import make_event, publish_all, scalar, wait_until

pytestmark = pytest.mark.integration
OUTAGE_S = 30


@pytest.fixture
def own_cluster(state_dir: Path) -> Iterator[Postgres]:
    """A cluster of this test's own: it is stopped on purpose."""
    pg = Postgres(
        state_dir=state_dir / f"pg-outage-{uuid.uuid4().hex[:6]}", port=free_port(), durable=False
    )
    pg.start()
    pg.ensure_database("larmkedja")
    db.migrate(pg.url("larmkedja"))
    try:
        yield pg
    finally:
        pg.stop(mode="immediate")


@pytest.mark.timeout(240)
def test_a_database_outage_holds_the_acks_and_catches_up(
    own_cluster: Postgres, broker: Broker, tmp_path: Path
) -> None:
    url = own_cluster.url("larmkedja")
    services = Services(database_url=url, broker=broker, logs=tmp_path)
    try:
        burst = Burst(10_000)
        services.ingest("db-outage")
        services.wait_ingest_connected()
        publisher = burst.publish_in_background(broker.host, broker.port)
        wait_until(lambda: burst.stored(url) >= 1_000, timeout=30, what="part stored")
        before = scalar(url, "SELECT now()")
        own_cluster.stop(mode="fast")
        down_at = time.monotonic()
        during = [make_event(f"outage-{i}", Kind.ALARM_FALL) for i in range(5)]
        publish_all(broker.host, broker.port, [(e.topic("outage"), e.to_json()) for e in during])
        publisher.join(timeout=120)
        assert not publisher.is_alive()  # the broker took everything while the database was down
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        own_cluster.start()
        wait_until(lambda: burst.stored(url) >= burst.total, timeout=90, what="caught up")
        wait_until(
            lambda: scalar(url, "SELECT count(*) FROM alarms WHERE site = 'outage'") == 5,
            timeout=10,
            what="the alarms raised during the outage",
        )
        for event in during:
            sql = "SELECT count(*) FROM alarms WHERE device_id = %s"
            assert scalar(url, sql, (event.device_id,)) == 1
        raised = "SELECT min(raised_at) > %s FROM alarms WHERE site = 'outage'"
        assert scalar(url, raised, (before,)), "raised when received, after the outage began"
        burst.verify(url)
    finally:
        services.stop_all()
