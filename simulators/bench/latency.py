"""Part 3 of the benchmark: alarm → operator, under heartbeats as they come in the field.

A broker of its own with authentication and the ACL (as `make up` runs it), ingest, engine and
API as processes with their own accounts, `devices` heartbeat devices each on its own
connection (`simulators/bench/field.py`) sending `background` heartbeats/s in all, and
`alarms` alarm devices, each its own connection too, pressing once each at `rate_per_s`.
Each alarm is timed from the moment its PUBLISH is written to its device's socket to its arrival on
the WebSocket and in `GET /api/v1/alarms`, and split at two stamps the database keeps: when
ingest read it (`raised_at`) and when its transaction committed (`track_commit_timestamp`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import secrets
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from websockets.sync.client import connect

from alarms import BrokerAuth, service_account
from api import create_token
from devstack.mosquitto import Mosquitto
from devstack.procs import free_port, read_pid
from larmkedja.settings import Settings
from simulators.bench import field as fieldload
from simulators.bench.cpu import CpuWindow
from simulators.bench.infra import BenchInfra, larmkedja, rss_mb, stop, wait_for

# How often the run lists the queue through the API. Each call serialises the whole queue (up
# to the timed alarms); every 5 ms that was ~200 calls/s, a load of its own that took most of a
# core; every 20 ms (50 calls/s) is finer than any target and more than a console asks.
API_POLL_S = 0.02
SITE = "bench"

# Stamps of each timed alarm, from the database (epoch seconds).
STAMPS = """
SELECT device_id, extract(epoch FROM raised_at)::float8,
       extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8
FROM alarms
"""


@dataclass
class Latency:
    ws_ms: list[float] = field(default_factory=list)
    api_ms: list[float] = field(default_factory=list)
    to_ingest_ms: list[float] = field(default_factory=list)  # published → read by ingest
    to_commit_ms: list[float] = field(default_factory=list)  # read → committed
    to_ws_ms: list[float] = field(default_factory=list)  # committed → on the WebSocket
    background_sent: int = 0  # heartbeats the broker acknowledged (the least of its brokers)
    devices: int = 0
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    cpu_cores: dict[str, float] = field(default_factory=dict)  # per process group, while timed

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


@dataclass
class Stack:
    """The latency run's own broker (with accounts) and the services' environment."""

    root: Path
    broker: Mosquitto
    env: dict[str, dict[str, str]]


def _stack(infra: BenchInfra, root: Path, database_url: str, *, devices: int, alarms: int) -> Stack:
    auth = BrokerAuth(directory=root / "auth")
    accounts = {name: service_account(f"svc-{name}", "lat") for name in ("ingest", "engine")}
    passwords = {account: secrets.token_urlsafe(24) for account in accounts.values()}
    auth.ensure_services(passwords)
    beat_ids = [f"f-{i:06d}" for i in range(devices)]
    fieldload.provision(auth, root=root / "field", site=SITE, device_ids=beat_ids)
    alarm_ids = [f"alarm-{i:05d}" for i in range(alarms)]
    fieldload.provision(auth, root=root / "alarms", site=SITE, device_ids=alarm_ids)
    broker = Mosquitto(
        state_dir=root / "mosquitto",
        port=free_port(),
        password_file=auth.password_file,
        acl_file=auth.acl_file,
    )
    broker.start()
    env = {}
    for name in ("ingest", "engine", "api"):
        account = accounts.get(name)
        env[name] = infra.env(
            database_url,
            LARM_MQTT_PORT=str(broker.port),
            LARM_INGEST_INSTANCE="lat",
            LARM_ENGINE_INSTANCE="lat",
            **(
                {"LARM_MQTT_USERNAME": account, "LARM_MQTT_PASSWORD": passwords[account]}
                if account
                else {}
            ),
        )
    return Stack(root=root, broker=broker, env=env)


def alarm_latency(
    infra: BenchInfra,
    *,
    database_url: str,
    alarms: int,
    rate_per_s: float,
    background: float,
    devices: int = 500,
) -> Latency:
    """Alarm published → on the WebSocket and in the queue API, under `background`
    heartbeats/s from `devices` devices."""
    root = infra.root / f"latency-{background:.0f}"
    stack = _stack(infra, root, database_url, devices=devices, alarms=alarms)
    port = free_port()
    stack.env["api"]["LARM_API_PORT"] = str(port)
    procs = {
        name: larmkedja([name], stack.env[name], root / f"{name}.log")
        for name in ("ingest", "engine", "api")
    }
    url = f"http://127.0.0.1:{port}"
    result = Latency(devices=devices)
    load = None
    try:
        wait_for(lambda: ready(url), timeout=60)
        headers = operator_headers(database_url)
        duration = alarms / rate_per_s + 10
        load = fieldload.background(
            root / "field", stack.broker.port, rate=background, seconds=duration
        )
        time.sleep(3)  # every device connected and the heartbeats flowing
        result.rss_start_mb = rss_mb(procs["ingest"].pid)
        cpu = CpuWindow(
            {
                "load": [load.pid],
                "broker": [read_pid(stack.broker.pid_file)],
                "PostgreSQL": [read_pid(infra.postgres.data_dir / "postmaster.pid")],
                **{name: [proc.pid] for name, proc in procs.items()},
                "timing": [os.getpid()],
            },
            alone=("timing",),
        )
        cpu.start(time.monotonic())
        wall = _measure(stack, url, headers, rate=rate_per_s, into=result)
        result.cpu_cores = cpu.stop(time.monotonic())
        split(database_url, wall, into=result)
        result.rss_end_mb = rss_mb(procs["ingest"].pid)
        out, _ = load.communicate(timeout=duration + 60)
        result.background_sent = int(out.strip() or 0)
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        for proc in procs.values():
            stop(proc)
        stack.broker.stop()
    return result


def split(
    database_url: str,
    wall: dict[str, tuple[float, float]],
    *,
    into: Latency,
    stamps_to: Path | None = None,
) -> None:
    """published → read by ingest → committed → on the WebSocket, per alarm; with `stamps_to`,
    each alarm's four wall times (s since the epoch) are written there as JSON, so a slow one
    can be set beside the machine's logs."""
    with psycopg.connect(database_url) as conn:
        rows = [r for r in conn.execute(STAMPS).fetchall() if r[0] in wall]
    if stamps_to is not None:
        keys = ("device_id", "published", "read", "committed", "on_websocket")
        stamps = [
            dict(zip(keys, (d, wall[d][0], r, c, wall[d][1]), strict=True)) for d, r, c in rows
        ]
        stamps_to.write_bytes(orjson.dumps(sorted(stamps, key=lambda s: s["published"])))
    for device, read_at, committed_at in rows:
        published, on_ws = wall[device]
        into.to_ingest_ms.append((read_at - published) * 1000)
        into.to_commit_ms.append((committed_at - read_at) * 1000)
        if on_ws:
            into.to_ws_ms.append((on_ws - committed_at) * 1000)


def operator_headers(database_url: str) -> dict[str, str]:
    """An operator's bearer token for the API of the setup on `database_url`."""
    secret = create_token(Settings(database_url=database_url), role="operator", name="bench")
    return {"Authorization": f"Bearer {secret}"}


def ready(url: str) -> bool:
    try:
        checks = httpx.get(f"{url}/readyz", timeout=2).json().get("checks", {})
    except (httpx.HTTPError, ValueError):
        return False
    return bool(checks) and all(v for k, v in checks.items() if k != "not_silent")


Press = Callable[[int, str, bytes], None]  # (index, device id, the event's payload) → sent


def press_and_watch(
    url: str,
    headers: dict[str, str],
    devices: list[str],
    press: Press,
    *,
    rate: float,
    into: Latency,
) -> dict[str, tuple[float, float]]:
    """Presses an alarm on each device (`press` sends it) at `rate`/s while the queue API is
    polled and the stream read; fills `into` with the end-to-end figures and returns each
    device's (published, on the WebSocket) wall times."""
    published: dict[str, float] = {}  # monotonic
    wall: dict[str, tuple[float, float]] = {}
    seen_api: dict[str, float] = {}
    stop_polling = threading.Event()

    def poll_api() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=5) as client:
            while not stop_polling.is_set():
                for alarm in client.get("/api/v1/alarms", params={"limit": 5000}).json():
                    seen_api.setdefault(alarm["device_id"], time.perf_counter())
                time.sleep(API_POLL_S)

    sent_at: dict[str, float] = {}
    ws_url = url.replace("http://", "ws://") + "/api/v1/stream"
    with _no_collection(), connect(ws_url, additional_headers=headers) as ws:
        poller = threading.Thread(target=poll_api, daemon=True)
        poller.start()
        reader = threading.Thread(
            target=_read_ws, args=(ws, len(devices), published, wall, into), daemon=True
        )
        reader.start()
        time.sleep(1.0)  # the stream and the poller reading
        try:
            for i, device in enumerate(devices):
                payload = _press(device)
                now = time.perf_counter()
                published[device] = sent_at[device] = now
                wall[device] = (time.time(), 0.0)
                press(i, device, payload)
                time.sleep(1 / rate)
            reader.join(30)
            time.sleep(0.5)
        finally:
            stop_polling.set()
            poller.join(10)
    into.api_ms = [(seen_api[d] - t) * 1000 for d, t in sent_at.items() if d in seen_api]
    return wall


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """This process's cyclic garbage collector off while alarms are timed, one collection after.

    The timing threads stamp each alarm as it arrives; a full collection of the bench's own
    heap stops them all for 30-110 ms (measured with `gc.callbacks` during `--ha-rounds`,
    2026-12-07), which would be counted as the system's latency. The little cyclic garbage of
    one timing (tens of seconds) waits for the collection after it."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def _measure(
    stack: Stack, url: str, headers: dict[str, str], *, rate: float, into: Latency
) -> dict[str, tuple[float, float]]:
    """Every alarm device of the stack presses once, each on its own connection."""
    presses = fieldload.Devices(
        root=stack.root / "alarms", host="127.0.0.1", port=stack.broker.port
    )
    try:
        return press_and_watch(
            url,
            headers,
            presses.ids,
            lambda i, device, payload: presses.send(i, [payload]),
            rate=rate,
            into=into,
        )
    finally:
        presses.close()


def _read_ws(
    ws: Any,
    alarms: int,
    published: dict[str, float],
    wall: dict[str, tuple[float, float]],
    into: Latency,
) -> None:
    while len(into.ws_ms) < alarms:
        try:
            message = orjson.loads(ws.recv(timeout=30))
        except TimeoutError:
            return
        if message.get("type") != "alarm":
            continue
        at, at_wall = time.perf_counter(), time.time()
        device = message["alarm"]["device_id"]
        if device in published and message["alarm"]["event_count"] == 1:
            into.ws_ms.append((at - published.pop(device)) * 1000)
            wall[device] = (wall[device][0], at_wall)


def _press(device_id: str) -> bytes:
    ts = datetime.now(UTC).isoformat(timespec="milliseconds")
    body = {
        "v": 1,
        "event_id": str(uuid.uuid4()),
        "device_id": device_id,
        "ts": ts,
        "kind": "alarm.button",
        "data": {},
    }
    return orjson.dumps(body)
