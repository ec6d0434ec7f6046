"""Fault: a silent network partition between the services and the broker. The broker, the
devices and a subscriber to alerts sit in a network namespace of their own
(`tests/faults/netns.py`); ingest, the engine and PostgreSQL stay in the root namespace. The link
is made silent both ways for longer than twice the MQTT keepalive while the devices go on
publishing on the broker's side: no RST, no ICMP, the peer just stops answering, which only the
keepalive notices."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from devstack.mosquitto import Mosquitto
from larmkedja.events import DeviceEvent, Kind
from tests.conftest import Broker
from tests.faults.conftest import Services
from tests.faults.netns import NetnsUnavailable, Node, node
from tests.helpers import make_event, scalar, wait_until

pytestmark = pytest.mark.integration

KEEPALIVE_S = 5  # LARM_MQTT_KEEPALIVE_S for the test (its lower bound)
SITE = "partition"
BEAT = (
    "SELECT (details->>'mqtt_connected')::bool, details->>'disconnected_since',"
    " extract(epoch FROM now() - seen_at)::float8 FROM service_heartbeats WHERE service = %s"
)
Conn = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def far_side() -> Iterator[Node]:
    try:
        with node() as it:
            yield it
    except NetnsUnavailable as exc:
        pytest.skip(f"no network namespace here: {exc}")


@dataclass
class Devices:
    """Devices on the broker's side: an event every 0.2 s, each by `mosquitto_pub` at QoS 1
    (it exits 0 once the broker acknowledged it); every fourth an alarm of a device of its
    own. `phase` labels what is sent when."""

    node: Node
    port: int
    phase: str = "before"
    sent: list[tuple[str, DeviceEvent]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="devices", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        pub = shutil.which("mosquitto_pub") or "mosquitto_pub"
        for i in range(10_000):
            if self.stopping.wait(0.2):
                return
            if i % 4 == 0:
                event = make_event(f"a-{i}", Kind.ALARM_BUTTON)
            else:
                event = make_event(f"h-{i % 7}", Kind.HEARTBEAT)
            argv = [pub, "-h", self.node.inner_ip, "-p", str(self.port), "-q", "1"]
            argv += ["-t", event.topic(SITE), "-m", event.to_json().decode()]
            try:
                done = subprocess.run(
                    self.node.inside(*argv), capture_output=True, text=True, timeout=10
                )
            except subprocess.TimeoutExpired:
                self.failed.append(f"no PUBACK for {event.event_id} within 10 s")
                continue
            if done.returncode == 0:
                self.sent.append((self.phase, event))
            else:
                self.failed.append(done.stderr)

    def count(self, phase: str) -> int:
        return sum(1 for p, _ in self.sent if p == phase)


def beat(conn: Conn, service: str) -> tuple[bool, datetime | None, float]:
    """A service's heartbeat row: connected to the broker, since when not, its age in s."""
    row = conn.execute(BEAT, (service,)).fetchone()
    assert row is not None, f"no {service} heartbeat"
    connected, since, age = row
    return bool(connected), datetime.fromisoformat(since) if since else None, float(age)


def connected(conn: Conn, service: str) -> bool:
    return conn.execute(BEAT, (service,)).fetchone() is not None and beat(conn, service)[0]


def stored(database_url: str) -> int:
    return int(scalar(database_url, "SELECT count(*) FROM events WHERE site = %s", (SITE,)))


def verify_once(database_url: str, devices: Devices) -> None:
    """Every event sent is stored once; every alarm sent is in the queue once, counted once."""
    events = [e for _, e in devices.sent]
    alarms = sorted(e.device_id for e in events if e.kind is Kind.ALARM_BUTTON)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT event_id FROM events WHERE site = %s", (SITE,)).fetchall()
        queued = conn.execute(
            "SELECT device_id, event_count FROM alarms WHERE site = %s ORDER BY device_id",
            (SITE,),
        ).fetchall()
    ids = [str(r[0]) for r in rows]
    assert len(ids) == len(set(ids)), "an event stored twice"
    assert set(ids) == {str(e.event_id) for e in events}, "an event lost"
    assert sorted(d for d, _ in queued) == alarms, "not one queue entry per alarm"
    assert all(n == 1 for _, n in queued), "an alarm counted twice"


def alerts_heard(path: Path) -> set[str]:
    """The alert ids `mosquitto_sub -v` wrote (topic, a space, the payload, a line each)."""
    lines = path.read_text().splitlines()
    return {str(orjson.loads(line.split(" ", 1)[1])["alert_id"]) for line in lines if line}


@pytest.fixture
def far_broker(far_side: Node, tmp_path: Path) -> Iterator[Mosquitto]:
    """The tests' broker (same configuration), in the node's namespace on its address."""
    server = Mosquitto(
        state_dir=tmp_path / "mq", port=1883, host=far_side.inner_ip, netns=far_side.name
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def heard(far_side: Node, far_broker: Mosquitto, tmp_path: Path) -> Iterator[Path]:
    """A subscriber to alerts on the broker's side; the file it writes them to."""
    path = tmp_path / "alerts.txt"
    sub = shutil.which("mosquitto_sub") or "mosquitto_sub"
    argv = [sub, "-h", far_broker.host, "-p", str(far_broker.port), "-v", "-t", "larm/v1/+/alerts"]
    with path.open("wb") as out:
        listener = subprocess.Popen(far_side.inside(*argv), stdout=out)
    yield path
    listener.terminate()
    listener.wait(timeout=5)


def test_a_silent_partition_from_the_broker_is_noticed_and_heals_with_nothing_lost_or_doubled(
    far_side: Node, far_broker: Mosquitto, heard: Path, database_url: str, tmp_path: Path
) -> None:
    services = Services(
        database_url=database_url,
        broker=Broker(host=far_broker.host, port=far_broker.port, server=far_broker),
        logs=tmp_path,
        extra_env={
            "LARM_MQTT_KEEPALIVE_S": str(KEEPALIVE_S),
            "LARM_SERVICE_HEARTBEAT_S": "1",
            "LARM_UNANSWERED_ALERT_S": "2",  # alerts for the engine to publish meanwhile
        },
    )
    devices = Devices(node=far_side, port=far_broker.port)
    try:
        services.ingest("partition")
        services.start("engine")
        services.wait_ingest_connected()
        with psycopg.connect(database_url, autocommit=True) as conn:
            wait_until(lambda: connected(conn, "engine"), timeout=20, what="engine connected")
            publishing = devices.start()
            wait_until(lambda: stored(database_url) >= 5, timeout=20, what="events before")
            figures = partition(conn, far_side, devices)
        time.sleep(2)  # and some events after
        devices.stopping.set()
        publishing.join(timeout=15)
        assert not devices.failed, devices.failed[:3]
        total = len(devices.sent)
        wait_until(lambda: stored(database_url) >= total, timeout=30, what="every event stored")
        pending = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        wait_until(lambda: scalar(database_url, pending) == 0, timeout=30, what="outbox empty")
        time.sleep(0.5)  # a late double would show now
        verify_once(database_url, devices)
        alerts = alerts_raised(database_url)
        assert alerts, "the engine raised alerts (unanswered alarms)"
        wait_until(lambda: alerts <= alerts_heard(heard), timeout=10, what="every alert heard")
        logs = "".join(p.read_text() for p in tmp_path.glob("ingest-*.log"))
        assert "disconnected from the broker" in logs
        print(
            f"\npartition (keepalive {KEEPALIVE_S} s): {figures}; {total} events"
            f" ({devices.count('before')} before, {devices.count('during')} during,"
            f" {devices.count('after')} after) each stored once, {len(alerts)} alerts heard"
        )
    finally:
        devices.stopping.set()
        services.stop_all()


def alerts_raised(database_url: str) -> set[str]:
    """The devices' alerts (not the system's, raised before the subscriber may have been)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT alert_id FROM alerts WHERE site = %s", (SITE,)).fetchall()
    return {str(r[0]) for r in rows}


@dataclass
class Watch:
    """Both services' heartbeat rows, read every 0.1 s: the oldest each was seen at meanwhile
    (a row not written for long is a process whose database work stalled)."""

    conn: Conn
    oldest: dict[str, float] = field(default_factory=lambda: {"ingest": 0.0, "engine": 0.0})

    def until(self, service: str, *, connected: bool, timeout: float) -> float:
        """Seconds until `service`'s heartbeat says `connected`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            rows = {s: beat(self.conn, s) for s in self.oldest}
            for s, (_, _, age) in rows.items():
                self.oldest[s] = max(self.oldest[s], age)
            if rows[service][0] is connected:
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"{service} not {connected=} within {timeout} s")


def partition(conn: Conn, far_side: Node, devices: Devices) -> str:
    """Cut the link until ingest and the engine noticed, and a while longer; heal it. Returns
    the times to notice (ingest: from the cut to its own `disconnected_since`; the engine: to
    its first heartbeat saying so) and to recover (from the heal to a heartbeat saying
    connected)."""
    watch = Watch(conn)
    cut_at = datetime.now(UTC)
    far_side.cut()
    devices.phase = "during"
    try:
        watch.until("ingest", connected=False, timeout=2 * KEEPALIVE_S + 3)
        since = beat(conn, "ingest")[1]
        assert since is not None
        noticed = (since - cut_at).total_seconds()
        assert noticed <= 2 * KEEPALIVE_S + 2, noticed
        engine_noticed = (datetime.now(UTC) - cut_at).total_seconds()
        engine_noticed += watch.until("engine", connected=False, timeout=10)
        time.sleep(2)  # the partition goes on a while after both noticed
        assert devices.count("during") > 0, "the devices published during the partition"
        assert not beat(conn, "ingest")[0]
    finally:
        far_side.heal()
        devices.phase = "after"
    # Ingest's own database work went on meanwhile: its heartbeat row, every second (a stall
    # like the engine's 5 s wait for an outbox PUBACK, once per keepalive, would show here).
    assert watch.oldest["ingest"] < 3, watch.oldest
    back = watch.until("ingest", connected=True, timeout=20)
    engine_back = back + watch.until("engine", connected=True, timeout=20)
    return (
        f"ingest noticed the silent broker after {noticed:.1f} s and was back"
        f" {back:.1f} s after the heal (its heartbeat row at most"
        f" {watch.oldest['ingest']:.1f} s old); the engine {engine_noticed:.1f} s and"
        f" {engine_back:.1f} s (heartbeat at most {watch.oldest['engine']:.1f} s old)"
    )
