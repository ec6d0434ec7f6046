"""Parts 2 to 5 of the benchmark: larmkedja itself (ingest drain, alarm latency, memory), and the
device sweep at the scale of all of Sweden."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import psycopg
from websockets.sync.client import connect

from alarms import OfflineSweep
from api import create_token
from devstack.procs import free_port
from larmkedja.events import DeviceEvent, Kind
from larmkedja.settings import Settings
from simulators.bench.infra import (
    BenchInfra,
    cpu_s,
    larmkedja,
    rss_mb,
    stop,
    wait_for,
)
from simulators.bench.load import Fanout

# How often the latency run lists the queue through the API. Each call serialises the whole
# queue (up to the 200 timed alarms); every 5 ms that was ~200 calls/s, a load of its own that
# took most of a core from the processes being measured and tripled the p99 of every path
# (ingest included). Every 20 ms (50 calls/s) is finer than any target here and still far
# more than a real centre's consoles ask (they follow the WebSocket and list only on start).
API_POLL_S = 0.02


@dataclass
class IngestRun:
    processes: int
    messages: int
    seconds: float
    rss_start_mb: list[float]
    rss_end_mb: list[float]
    cpu_s: list[float]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def drain_ingest(
    infra: BenchInfra,
    *,
    group: str,
    instances: list[str],
    database_url: str,
    expected: int,
    protocol: str = "5",
) -> IngestRun:
    """Start ingest process(es) on a preloaded backlog; the sustained rate runs from the first
    commit to the last (process start-up excluded)."""
    procs = [
        larmkedja(
            ["ingest"],
            infra.env(
                database_url,
                LARM_INGEST_SHARE_GROUP=group,
                LARM_INGEST_INSTANCE=name,
                LARM_INGEST_MQTT_PROTOCOL=protocol,
            ),
            infra.root / f"ingest-{name}.log",
        )
        for name in instances
    ]
    try:
        time.sleep(0.3)
        rss_start = [rss_mb(p.pid) for p in procs]
        first: tuple[float, int] | None = None
        last = (time.perf_counter(), 0)
        with psycopg.connect(database_url, autocommit=True) as conn:
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                row = conn.execute("SELECT count(*) FROM event_ids").fetchone()
                n = int(row[0]) if row else 0
                now = time.perf_counter()
                if n and first is None:
                    first = (now, n)
                last = (now, n)
                if n >= expected:
                    break
                time.sleep(0.1)
        if first is None or last[1] < expected:
            raise RuntimeError(f"ingest stored {last[1]} of {expected}")
        rss_end = [rss_mb(p.pid) for p in procs]
        cpu = [cpu_s(p.pid) for p in procs]
    finally:
        for p in procs:
            stop(p)
    return IngestRun(
        processes=len(procs),
        messages=expected - first[1],
        seconds=last[0] - first[0],
        rss_start_mb=rss_start,
        rss_end_mb=rss_end,
        cpu_s=cpu,
    )


@dataclass
class Latency:
    ws_ms: list[float] = field(default_factory=list)
    api_ms: list[float] = field(default_factory=list)
    to_ingest_ms: list[float] = field(default_factory=list)  # publish → received by ingest
    background_sent: int = 0
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0

    @staticmethod
    def summary(values: list[float]) -> dict[str, float | None]:
        if not values:
            return {"p50": None, "p99": None, "max": None, "n": 0}
        ordered = sorted(values)
        q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else None
        return {
            "p50": statistics.median(ordered),
            "p99": q[98] if q else ordered[0],
            "max": ordered[-1],
            "n": len(ordered),
        }


def alarm_latency(
    infra: BenchInfra, *, database_url: str, alarms: int, rate_per_s: float, background: float
) -> Latency:
    """Alarm published → in the queue API and on the WebSocket, with `background` heartbeats/s
    from another process (all of Sweden: 4,000/s)."""
    port = free_port()
    env = infra.env(database_url, LARM_API_PORT=str(port), LARM_INGEST_INSTANCE="lat")
    procs = {
        name: larmkedja([name], env, infra.root / f"latency-{name}.log")
        for name in ("ingest", "engine", "api")
    }
    url = f"http://127.0.0.1:{port}"
    result = Latency()
    try:
        wait_for(lambda: _ready(url), timeout=30)
        measure_latency(
            url,
            database_url,
            [infra.broker.port],
            alarms=alarms,
            rate=rate_per_s,
            background=background,
            ingest_pid=procs["ingest"].pid,
            into=result,
        )
    finally:
        for proc in procs.values():
            stop(proc)
    return result


def measure_latency(
    url: str,
    database_url: str,
    ports: list[int],
    *,
    alarms: int,
    rate: float,
    background: float,
    ingest_pid: int,
    into: Latency,
) -> None:
    """With ingest, engine and API running: the background load to every broker of `ports`,
    then the timed alarms (each to every broker, as a device with two paths sends)."""
    result = into
    secret = create_token(Settings(database_url=database_url), role="operator", name="bench")
    headers = {"Authorization": f"Bearer {secret}"}
    duration = alarms / rate + 10
    load = _background(ports, rate=background, seconds=duration)
    try:
        time.sleep(2)  # the background is flowing
        result.rss_start_mb = rss_mb(ingest_pid)
        wall = _measure(ports, url, headers, alarms=alarms, rate=rate, into=result)
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT device_id, extract(epoch FROM raised_at)::float8 FROM alarms"
            ).fetchall()
        result.to_ingest_ms = [(t - wall[d]) * 1000 for d, t in rows if d in wall]
        result.rss_end_mb = rss_mb(ingest_pid)
        out, _ = load.communicate(timeout=duration + 60)
        result.background_sent = int(out.strip() or 0)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()


def _ready(url: str) -> bool:
    try:
        checks = httpx.get(f"{url}/readyz", timeout=2).json().get("checks", {})
    except (httpx.HTTPError, ValueError):
        return False
    return bool(checks) and all(v for k, v in checks.items() if k != "not_silent")


def _background(ports: list[int], *, rate: float, seconds: float) -> Any:
    import subprocess

    return subprocess.Popen(  # noqa: S603 - our own module, numeric arguments
        [
            sys.executable,
            "-m",
            "simulators.bench.load",
            *(f"--port={port}" for port in ports),
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def _measure(
    ports: list[int],
    url: str,
    headers: dict[str, str],
    *,
    alarms: int,
    rate: float,
    into: Latency,
) -> dict[str, float]:
    """Returns the wall-clock publish time of each alarm (by device id)."""
    published: dict[str, float] = {}
    wall: dict[str, float] = {}
    seen_api: dict[str, float] = {}
    stop_polling = threading.Event()

    def poll_api() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=5) as client:
            while not stop_polling.is_set():
                for alarm in client.get("/api/v1/alarms", params={"limit": 5000}).json():
                    seen_api.setdefault(alarm["device_id"], time.perf_counter())
                time.sleep(API_POLL_S)

    ws_url = url.replace("http://", "ws://") + "/api/v1/stream"
    with connect(ws_url, additional_headers=headers) as ws:
        poller = threading.Thread(target=poll_api, daemon=True)
        poller.start()
        reader_done = threading.Event()

        def read_ws() -> None:
            while len(into.ws_ms) < alarms:
                try:
                    message = orjson.loads(ws.recv(timeout=30))
                except TimeoutError:
                    break
                if message.get("type") != "alarm":
                    continue
                device = message["alarm"]["device_id"]
                at = time.perf_counter()
                if device in published and message["alarm"]["event_count"] == 1:
                    into.ws_ms.append((at - published.pop(device)) * 1000)
            reader_done.set()

        reader = threading.Thread(target=read_ws, daemon=True)
        reader.start()
        sent_at: dict[str, float] = {}
        try:
            _publish_alarms(ports, alarms=alarms, rate=rate, into=(published, sent_at, wall))
            reader_done.wait(30)
            time.sleep(0.5)
        finally:
            stop_polling.set()
            poller.join(10)
    into.api_ms = [(seen_api[d] - t) * 1000 for d, t in sent_at.items() if d in seen_api]
    return wall


def _publish_alarms(
    ports: list[int],
    *,
    alarms: int,
    rate: float,
    into: tuple[dict[str, float], dict[str, float], dict[str, float]],
) -> None:
    """Publish `alarms` alarms at `rate`/s, noting when each left (monotonic and wall time)."""
    published, sent_at, wall = into
    pub = Fanout("127.0.0.1", ports)
    try:
        for i in range(alarms):
            event = DeviceEvent.create(f"alarm-{i:05d}", Kind.ALARM_BUTTON)
            payload = event.to_json()
            now = time.perf_counter()
            published[event.device_id] = now
            sent_at[event.device_id] = now
            wall[event.device_id] = time.time()
            pub.send(event.topic("bench"), payload)
            time.sleep(1 / rate)
    finally:
        pub.close()


def device_sweep(database_url: str, *, devices: int = 250_000, due: int = 2_500) -> dict[str, Any]:
    """The offline sweep with `devices` registered (`due` of them past their deadline), and the
    liveness statement for one batch of 2,000 new heartbeats."""
    sweep = OfflineSweep(settings=Settings(heartbeat_default_s=90.0, unanswered_alert_s=60.0))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at)"
            " SELECT 'b-' || lpad(g::text, 6, '0'), 'site-' || (g %% 290), now(), now(),"
            "        now() + make_interval(secs => 270 + g %% 60)"
            " FROM generate_series(1, %s) g",
            (devices,),
        )
        conn.execute("VACUUM ANALYZE devices")
        timings: list[float] = []
        for _ in range(10):
            started = time.perf_counter()
            with conn.transaction():
                fired = sweep.run(conn)
            timings.append((time.perf_counter() - started) * 1000)
        conn.execute(
            "UPDATE devices SET offline_due_at = now() - interval '1 s'"
            " WHERE device_id IN (SELECT device_id FROM devices ORDER BY device_id LIMIT %s)",
            (due,),
        )
        started = time.perf_counter()
        with conn.transaction():
            fired = sweep.run(conn)
        due_ms = (time.perf_counter() - started) * 1000
    return {
        "devices": devices,
        "sweep_idle_ms_median": statistics.median(timings),
        "sweep_idle_ms_max": max(timings),
        "due": due,
        "sweep_with_due_ms": due_ms,
        "fired": fired,
        "core_share_at_2_per_s": statistics.median(timings) / 1000 * 2,
    }
