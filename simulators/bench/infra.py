"""Infrastructure for the benchmark: its own broker and cluster under .state/bench/, and the
processes it starts (so nothing of a running `make up` stack is touched)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from devstack.mosquitto import Mosquitto
from devstack.postgres import Postgres
from devstack.procs import free_port
from larmkedja import db


@dataclass
class BenchInfra:
    root: Path
    broker: Mosquitto
    postgres: Postgres

    def database(self, name: str) -> str:
        """A fresh, migrated database."""
        self.postgres.drop_database(name)
        self.postgres.ensure_database(name)
        url = self.postgres.url(name)
        db.migrate(url)
        return url

    def env(self, database_url: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "LARM_DATABASE_URL": database_url,
            "LARM_MQTT_HOST": "127.0.0.1",
            "LARM_MQTT_PORT": str(self.broker.port),
            "LARM_INGEST_METRICS_PORT": "0",
            "LARM_ENGINE_METRICS_PORT": "0",
            **extra,
        }


@contextmanager
def bench_infra(root: Path) -> Iterator[BenchInfra]:
    root.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(state_dir=root / "mosquitto", port=free_port())
    postgres = Postgres(
        state_dir=root / "pg",
        port=free_port(),
        extra_settings={"track_commit_timestamp": "on"},  # the latency split: when committed
    )
    broker.start()
    postgres.start()
    try:
        yield BenchInfra(root=root, broker=broker, postgres=postgres)
    finally:
        broker.stop()
        postgres.stop()


def larmkedja(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).with_name("larmkedja"))
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own console script
            [exe, *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count(url: str, sql: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql.encode()).fetchone()
    return int(row[0]) if row else 0


def wait_for(predicate: object, timeout: float, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(every)
    return False


def module_process(module: str, *args: str) -> subprocess.Popen[str]:
    """One of the bench's own modules as a process of its own (a load generator: its CPU is
    not the measured process's); it prints its result on stdout."""
    return subprocess.Popen(  # noqa: S603 - our own module and arguments
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, text=True
    )
