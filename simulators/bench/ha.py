"""The alarm latency of the high-availability topology, beside the single machine's of the same
run (`larmkedja bench --ha-latency`).

The HA side: three etcd members and three Patroni nodes (PostgreSQL + TimescaleDB, durable,
synchronous replication: a commit waits for a replica), two Mosquitto brokers as two receiving
paths (the background and the timed alarms are published to both, as dual-path devices send
them), one ingest process per broker, two engines (one leads), one API, every process on the
multi-host URL. The single side: the same processes on one broker and one PostgreSQL.

Both sides are measured alike, with the field-like load of the main latency part
(`simulators/bench/field.py`): 500 devices, each on its own connection to each broker of the
run, send the background (one load process per broker, the same events in the same order, as
dual-path devices send every event on both paths); 200 more each press one alarm, written to
each broker by the timing thread. (Until 2026-12-07 the background came from one paho
connection per broker: at 8,000 publishes/s for two paths it took most of a core and fell
behind, and the topology with the most processes paid for it most.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from devstack.ha_database import HaDatabase, ha_port_names
from devstack.mosquitto import Mosquitto
from devstack.procs import free_port, read_pid
from larmkedja import db
from simulators.bench import field as fieldload
from simulators.bench.cpu import CpuWindow
from simulators.bench.ha_commit import commit_costs
from simulators.bench.infra import BenchInfra, larmkedja, rss_mb, stop, wait_for
from simulators.bench.latency import Latency, operator_headers, press_and_watch, ready, split
from simulators.bench.offpath import lower_off_path

DATABASE = "bench_ha"
SITE = "bench"
FIELD_DEVICES = 500  # as the main latency part's
# (report key, receiving paths, devices send to both, the work of the machines off the alarm's
# path niced): the HA runs of `bench --ha-latency` (simulators/bench/offpath.py).
VARIANTS = (
    ("ha_db_latency", 1, True, False),
    ("ha_db_offpath_latency", 1, True, True),
    ("ha_failover_latency", 2, False, False),
    ("ha_latency", 2, True, False),
)


def services(
    root: Path, env: dict[str, str], brokers: list[Mosquitto]
) -> tuple[list[Any], list[int | None]]:
    """The services (ingest first), and the pids of what runs on the second service machine
    in the field: the second path's broker and ingest, the second engine."""
    procs = []
    for i, broker in enumerate(brokers, start=1):
        own = {**env, "LARM_MQTT_PORT": str(broker.port), "LARM_INGEST_INSTANCE": f"ha-{i}"}
        procs.append(larmkedja(["ingest"], own, root / f"ha-ingest-{i}.log"))
    for name in ("a", "b"):
        own = {**env, "LARM_ENGINE_INSTANCE": name}
        procs.append(larmkedja(["engine"], own, root / f"ha-engine-{name}.log"))
    procs.append(larmkedja(["api"], env, root / "ha-api.log"))
    second = [read_pid(b.pid_file) for b in brokers[1:]]
    second += [p.pid for p in procs[1 : len(brokers)]] + [procs[len(brokers) + 1].pid]
    return procs, second


def ha_latency(
    infra: BenchInfra,
    *,
    alarms: int,
    rate_per_s: float,
    background: float,
    paths: int = 2,
    send_to_both: bool = True,
    off_path_niced: bool = False,
) -> dict[str, Any]:
    """`paths` 2: the whole HA topology, devices sending every event to both brokers
    (`send_to_both`) or to the first only (devices that fail over: the second path idle until
    the first fails); 1: the HA database behind one broker and one ingest (what the database's
    replication costs, without the second path's). `off_path_niced`: the work of the machines
    off the alarm's path at the lowest CPU priority (simulators/bench/offpath.py)."""
    sending = "both" if send_to_both else "first"
    root = infra.root / (f"ha-{paths}-{sending}" + ("-niced" if off_path_niced else ""))
    ha, brokers = cluster(root, paths)
    commits: dict[str, Any] | None = None
    try:
        url = start_cluster(ha, brokers)
        if paths == 1 and not off_path_niced:  # the cluster alone, once a run
            commits = commit_costs(url)
        api_port = free_port()
        procs, second_machine = services(root, ha_env(infra, url, api_port, brokers), brokers)
        if off_path_niced:
            lower_off_path(ha, also=second_machine)
        run = _measured(
            procs,
            f"http://127.0.0.1:{api_port}",
            url,
            [b.port for b in brokers] if send_to_both else [brokers[0].port],
            alarms=alarms,
            rate=rate_per_s,
            background_rate=background,
            what="the HA topology",
            logs=root,
        )
    finally:
        stop_cluster(ha, brokers)
    drop_data(ha)
    return run if commits is None else run | {"commit_ms": commits}


def cluster(root: Path, paths: int) -> tuple[HaDatabase, list[Mosquitto]]:
    """The HA database and `paths` brokers under `root`, not started yet."""
    ha = HaDatabase(
        state_dir=root / "db",
        ports={n: free_port() for n in ha_port_names()},
        parameters={"track_commit_timestamp": "on"},  # the split, as the single machine's
    )
    brokers = [
        Mosquitto(state_dir=root / f"mosquitto{i}", port=free_port()) for i in range(1, paths + 1)
    ]
    return ha, brokers


def ha_env(infra: BenchInfra, url: str, api_port: int, brokers: list[Mosquitto]) -> dict[str, str]:
    """The services' environment on the HA topology: the multi-host URL, every path."""
    return infra.env(
        url,
        LARM_API_PORT=str(api_port),
        LARM_MQTT_PATHS=json.dumps([f"127.0.0.1:{b.port}" for b in brokers]),
    )


def stop_cluster(ha: HaDatabase, brokers: list[Mosquitto]) -> None:
    ha.stop()
    for broker in brokers:
        broker.stop()


def drop_data(ha: HaDatabase) -> None:
    for node in ha.nodes:  # hundreds of MB; the logs stay
        shutil.rmtree(node.data_dir, ignore_errors=True)


def _measured(
    procs: list[Any],
    api: str,
    database_url: str,
    ports: list[int],
    *,
    alarms: int,
    rate: float,
    background_rate: float,
    what: str,
    logs: Path,
) -> dict[str, Any]:
    """Once the API of `procs` is ready, the latencies of one side (`measure_latency`); the
    processes are stopped either way."""
    result = Latency()
    try:
        if not wait_for(lambda: ready(api), timeout=60):
            raise RuntimeError(f"{what} did not become ready (logs in {logs})")
        measure_latency(
            api,
            database_url,
            ports,
            alarms=alarms,
            rate=rate,
            background_rate=background_rate,
            ingest_pid=procs[0].pid,
            into=result,
            root=logs,
        )
    finally:
        for proc in procs:
            stop(proc)
    return figures(result)


def figures(result: Latency) -> dict[str, Any]:
    """What the report keeps of one side's run."""
    return {
        "websocket_ms": result.summary(result.ws_ms),
        "queue_api_ms": result.summary(result.api_ms),
        "publish_to_ingest_ms": result.summary(result.to_ingest_ms),
        "ingest_to_commit_ms": result.summary(result.to_commit_ms),
        "commit_to_websocket_ms": result.summary(result.to_ws_ms),
        "background_events": result.background_sent,
        "machine_busy_cores": result.cpu_cores.get("machine"),
    }


def _backgrounds(
    beats: Path, ports: list[int], *, rate: float, seconds: float
) -> list[subprocess.Popen[str]]:
    """The field load to every broker of `ports`: the same events on every path, new ones in
    every timing."""
    seed = fieldload.new_seed()
    return [
        fieldload.background(beats, port, rate=rate, seconds=seconds, seed=seed) for port in ports
    ]


def measure_latency(
    url: str,
    database_url: str,
    ports: list[int],
    *,
    alarms: int,
    rate: float,
    background_rate: float,
    ingest_pid: int,
    into: Latency,
    root: Path,
    alarm_prefix: str = "alarm",
) -> None:
    """With ingest, engine and API running: the background to every broker of `ports`, then
    the timed alarms, each to every broker (from devices `{alarm_prefix}-00000`, …)."""
    headers = operator_headers(database_url)
    duration = alarms / rate + 10
    beats = fieldload.unauthenticated(
        root / "field", site=SITE, device_ids=[f"f-{i:06d}" for i in range(FIELD_DEVICES)]
    )
    ids = [f"{alarm_prefix}-{i:05d}" for i in range(alarms)]
    presses_root = fieldload.unauthenticated(root / "alarms", site=SITE, device_ids=ids)
    loads = _backgrounds(beats, ports, rate=background_rate, seconds=duration)
    presses: list[fieldload.Devices] = []

    def press(i: int, device: str, payload: bytes) -> None:
        for path in presses:  # a dual-path device sends its alarm on every path
            path.send(i, [payload])

    try:
        for port in ports:
            presses.append(fieldload.Devices(root=presses_root, host="127.0.0.1", port=port))
        time.sleep(2)  # the background is flowing
        into.rss_start_mb = rss_mb(ingest_pid)
        busy = CpuWindow({})  # the machine's busy cores while the alarms are timed
        busy.start(time.monotonic())
        wall = press_and_watch(
            url,
            headers,
            ids,
            press,
            rate=rate,
            into=into,
        )
        into.cpu_cores = busy.stop(time.monotonic())
        split(database_url, wall, into=into, stamps_to=root / "stamps.json")
        into.rss_end_mb = rss_mb(ingest_pid)
        into.background_sent = min(
            int(load.communicate(timeout=duration + 60)[0].strip() or 0) for load in loads
        )
    finally:
        for p in presses:
            p.close()
        for load in loads:
            if load.poll() is None:
                load.kill()
                load.wait()


def single_latency(
    infra: BenchInfra, *, alarms: int, rate_per_s: float, background_rate: float
) -> dict[str, Any]:
    """The single machine measured as the HA side is: one broker, one PostgreSQL."""
    url, port, procs = single_services(infra)
    return _measured(
        procs,
        f"http://127.0.0.1:{port}",
        url,
        [infra.broker.port],
        alarms=alarms,
        rate=rate_per_s,
        background_rate=background_rate,
        what="the single machine",
        logs=infra.root,
    )


def single_services(infra: BenchInfra) -> tuple[str, int, list[subprocess.Popen[bytes]]]:
    """Ingest, engine and API on the single machine (the bench's broker and PostgreSQL): the
    database's URL, the API's port, the processes (ingest first)."""
    url = infra.database("bench_single")
    port = free_port()
    env = infra.env(url, LARM_API_PORT=str(port), LARM_INGEST_INSTANCE="single")
    procs = [
        larmkedja([name], env, infra.root / f"single-{name}.log")
        for name in ("ingest", "engine", "api")
    ]
    return url, port, procs


def start_cluster(ha: HaDatabase, brokers: list[Mosquitto]) -> str:
    """Brokers and the HA database up, migrated; returns the database's multi-host URL."""
    for broker in brokers:
        broker.start()
    ha.start()
    ha.wait_replicas()
    ha.ensure_database(DATABASE)
    url = ha.url(DATABASE)
    db.migrate(url)
    return url


RUNS = (
    ("single machine", "single_latency"),
    ("HA database, 1 broker", "ha_db_latency"),
    ("HA db, off-path niced", "ha_db_offpath_latency"),
    ("HA, 2 paths, fail over", "ha_failover_latency"),
    ("HA, 2 paths, send both", "ha_latency"),
)


def ha_table(report: dict[str, Any]) -> str:
    """The latencies side by side, and each HA one as a share of the single machine's."""
    single = report["single_latency"]
    background = float(report["options"]["background"])
    head = (
        f"larmkedja bench --ha-latency  {report['started_at']}  ({report['machine']['cpus']} CPUs)"
    )
    lines = [head, "-" * len(head), f"alarm → …, under {background:,.0f} heartbeats/s"]
    for label, key in (
        ("WebSocket", "websocket_ms"),
        ("queue API", "queue_api_ms"),
        ("ingest", "publish_to_ingest_ms"),
        ("→ commit", "ingest_to_commit_ms"),
        ("→ WS", "commit_to_websocket_ms"),
    ):
        for name, run_key in RUNS:
            if run_key not in report:
                continue
            s = report[run_key][key]
            one = single[key]
            ratio = (
                f"  (÷ single: p50 {s['p50'] / one['p50']:.2f}, p99 {s['p99'] / one['p99']:.2f})"
                if run_key != "single_latency" and s["p50"] and one["p50"]
                else ""
            )
            lines.append(
                f"  {label:<9} {name:<25} "
                + (
                    "n/a"
                    if s["p50"] is None
                    else f"p50 {s['p50']:.1f} / p99 {s['p99']:.1f} / max {s['max']:.1f} ms"
                )
                + ratio
            )
    sent = ", ".join(
        f"{name} {report[key]['background_events']:,}" for name, key in RUNS if key in report
    )
    lines.append(f"  background acknowledged (by each broker): {sent}")
    busy = ", ".join(
        f"{name} {report[key]['machine_busy_cores']:.2f}"
        for name, key in RUNS
        if report.get(key, {}).get("machine_busy_cores") is not None
    )
    if busy:
        lines.append(f"  the machine's busy cores while timed: {busy}")
    commits = report.get("ha_db_latency", {}).get("commit_ms")
    if commits:
        levels = ", ".join(
            f"{level} p50 {s['p50']:.2f} / p99 {s['p99']:.2f}" for level, s in commits.items()
        )
        lines.append(f"commit on the HA database (synchronous_commit, ms): {levels}")
    return "\n".join(lines)
