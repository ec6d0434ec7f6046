"""20,000 events at QoS 1 while the ingest process is killed with SIGKILL and restarted:
every one is stored, each once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from larmkedja.events import Kind
from tests.conftest import Broker
from tests.helpers import make_event, publish_all, scalar, wait_until

pytestmark = pytest.mark.integration

TOTAL = 20_000


@contextmanager
def ingest_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    exe = str(Path(sys.executable).with_name("larmkedja"))
    with log.open("ab") as out:
        proc = subprocess.Popen([exe, "ingest"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)


def test_sigkill_in_the_middle_of_a_burst_loses_and_doubles_nothing(
    database_url: str, broker: Broker, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "LARM_DATABASE_URL": database_url,
        "LARM_MQTT_HOST": broker.host,
        "LARM_MQTT_PORT": str(broker.port),
        "LARM_INGEST_INSTANCE": "crash-test",
        "LARM_INGEST_METRICS_PORT": "0",
    }
    log = tmp_path / "ingest.log"

    def ingest_ready() -> bool:
        sql = "SELECT count(*) FROM service_heartbeats WHERE (details->>'mqtt_connected')::bool"
        return bool(scalar(database_url, sql))

    def stored() -> int:
        return int(scalar(database_url, "SELECT count(*) FROM events"))

    events = [
        make_event(f"d-{i % 500}", Kind.ALARM_BUTTON if i % 1000 == 0 else Kind.HEARTBEAT)
        for i in range(TOTAL)
    ]
    messages = [(e.topic("burst"), e.to_json()) for e in events]
    with ingest_process(env, log) as first:
        wait_until(ingest_ready, timeout=20, what="ingest subscribed")
        publisher = threading.Thread(
            target=publish_all, args=(broker.host, broker.port, messages), daemon=True
        )
        publisher.start()
        wait_until(lambda: stored() >= 2_000, timeout=30, what="a part of the burst stored")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=5)
    killed_at = stored()
    assert killed_at < TOTAL, "the kill came too late to prove anything"
    with ingest_process(env, log):
        publisher.join(timeout=60)
        assert not publisher.is_alive()
        wait_until(lambda: stored() >= TOTAL, timeout=60, what="all 20,000 events")
        assert int(scalar(database_url, "SELECT count(DISTINCT event_id) FROM events")) == TOTAL
        assert stored() == TOTAL
        ids = {str(e.event_id) for e in events}
        assert int(scalar(database_url, "SELECT count(*) FROM event_ids")) == len(ids)
