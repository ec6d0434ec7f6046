"""Shared fixtures. Integration and e2e tests run on a real Mosquitto and a real TimescaleDB,
started here under .state/test-*/ (one PostgreSQL cluster per session, a fresh database per
test from a migrated template; one broker per test)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings

from devstack.mosquitto import Mosquitto
from devstack.postgres import Postgres
from devstack.procs import free_port, share_ports
from larmkedja import db
from tests.helpers import ROLE_PASSWORDS

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = "larm_template"

# Examples are random on every run (a rare case can still turn up, as one did in DC-09), but a
# slow example is not a failure: the suite shares two cores with its own broker and database,
# and Hypothesis' 200 ms deadline turned a busy moment into a "flaky" error. A failure prints
# the blob that replays it (`@reproduce_failure`).
settings.register_profile("larmkedja", deadline=None, print_blob=True)
settings.load_profile("larmkedja")


def pytest_configure(config: pytest.Config) -> None:
    """Under `make test` (pytest-xdist) each worker, and every process it starts, listens only
    on its own slice of the ports `free_port` hands out: two workers once picked the same one
    between one's pick and its server's bind ("address already in use")."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker.startswith("gw") and worker[2:].isdigit() and count > 1:
        share_ports(int(worker[2:]), count)


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    server: Mosquitto


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    path = ROOT / ".state" / f"test-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(state_dir: Path) -> Iterator[Postgres]:
    pg = Postgres(state_dir=state_dir / "pg", port=free_port(), durable=False)
    pg.start()
    pg.ensure_database(TEMPLATE)
    db.migrate(pg.url(TEMPLATE), role_passwords=ROLE_PASSWORDS)
    freeze_template(pg)
    yield pg
    pg.stop(mode="immediate")


def freeze_template(pg: Postgres) -> None:
    """No one may connect to the template (TimescaleDB's scheduler would), so copies never fail
    with 'source database is being accessed by other users'."""
    with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {TEMPLATE} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (TEMPLATE,),
        )


@pytest.fixture
def database_url(postgres: Postgres) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.ensure_database(name, template=TEMPLATE)
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture
def broker(state_dir: Path) -> Iterator[Broker]:
    server = Mosquitto(state_dir=state_dir / f"mq-{uuid.uuid4().hex[:8]}", port=free_port())
    server.start()
    yield Broker(host=server.host, port=server.port, server=server)
    server.stop()
