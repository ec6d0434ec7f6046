"""Fault injection with real processes: larmkedja's services as subprocesses against the test
broker and database, killed, restarted, slowed down."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import Broker
from tests.helpers import scalar, wait_until

EXE = str(Path(sys.executable).with_name("larmkedja"))
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child: be killed when the test process dies, even if it is killed itself (a
    pytest stopped by a timeout must not leave services running)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Services:
    database_url: str
    broker: Broker
    logs: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    running: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "LARM_DATABASE_URL": self.database_url,
            "LARM_MQTT_HOST": self.broker.host,
            "LARM_MQTT_PORT": str(self.broker.port),
            "LARM_INGEST_METRICS_PORT": "0",
            "LARM_ENGINE_METRICS_PORT": "0",
            **self.extra_env,
            **extra,
        }

    def start(self, command: str, **extra: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{command}-{uuid.uuid4().hex[:4]}.log").open("ab")
        proc = subprocess.Popen(
            [EXE, command],
            env=self.env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        log.close()
        self.running.append(proc)
        return proc

    def ingest(self, instance: str = "1", **extra: str) -> subprocess.Popen[bytes]:
        return self.start("ingest", LARM_INGEST_INSTANCE=instance, **extra)

    def wait_ingest_connected(self, count: int = 1, timeout: float = 20) -> None:
        sql = (
            "SELECT count(*) FROM service_heartbeats WHERE service = 'ingest'"
            " AND (details->>'mqtt_connected')::bool AND seen_at > now() - interval '5 s'"
        )
        wait_until(
            lambda: scalar(self.database_url, sql) >= count,
            timeout=timeout,
            what=f"{count} ingest process(es) connected",
        )

    def stop_all(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def services(database_url: str, broker: Broker, tmp_path: Path) -> Iterator[Services]:
    s = Services(database_url=database_url, broker=broker, logs=tmp_path)
    try:
        yield s
    finally:
        s.stop_all()


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=5)
