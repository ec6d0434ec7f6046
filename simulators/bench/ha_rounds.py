"""`larmkedja bench --ha-latency --ha-rounds N`: the HA topology's alarm latency against the
single machine's, told apart from the machine's own drift.

`--ha-latency` alone starts each setup, times it once and stops it. Over five such runs on
2026-12-07 the HA topology's p50 was 1.01-1.37 of the single machine's, and two setups with the
same work on the alarm's path differed by as much as either from the single machine: one run
cannot tell 20 % apart. Here both setups stay up side by side — the single machine (one broker,
one PostgreSQL, ingest, engine, API) and the HA topology (three etcd members, three Patroni nodes,
two brokers, an ingest per broker, two engines, one API; its devices failing over, so every
event goes to the first path while it answers) — and rounds time each in turn, the order
alternating (the single machine first in even rounds), each with the field load and timing of
`ha.measure_latency`, its alarms from devices of its own round (an alarm still open from an
earlier round is never pressed again). Each round gives HA ÷ single at p50 and p99; the medians
over the rounds are the answer, their spread says whether it is one. The setup not being timed
runs idle meanwhile; the busy cores of each timed window are printed beside it.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from typing import Any

from devstack.ha_database import HaDatabase, ha_port_names
from devstack.mosquitto import Mosquitto
from devstack.procs import free_port
from simulators.bench.ha import figures, measure_latency, services, start_cluster
from simulators.bench.infra import BenchInfra, larmkedja, stop, wait_for
from simulators.bench.latency import Latency, ready

SIDES = ("single", "ha")
SPLIT = (
    ("published → read by ingest", "publish_to_ingest_ms"),
    ("read → committed", "ingest_to_commit_ms"),
    ("committed → WebSocket", "commit_to_websocket_ms"),
)


@dataclass(frozen=True, kw_only=True)
class Side:
    api: str
    database_url: str
    ports: list[int]  # where its devices send (the first path only: they fail over)
    procs: list[subprocess.Popen[bytes]]  # ingest first


def order(rnd: int) -> tuple[str, ...]:
    """Which side is timed first in round `rnd` (from 0): the single machine in even rounds."""
    return SIDES if rnd % 2 == 0 else SIDES[::-1]


def ha_rounds(
    infra: BenchInfra, *, rounds: int, alarms: int, rate_per_s: float, background: float
) -> dict[str, Any]:
    """Both setups up, then the rounds; each side's figures per round and HA ÷ single."""
    root = infra.root / "ha-rounds"
    ha = HaDatabase(
        state_dir=root / "db",
        ports={n: free_port() for n in ha_port_names()},
        parameters={"track_commit_timestamp": "on"},  # the split, as the single machine's
    )
    brokers = [Mosquitto(state_dir=root / f"mosquitto{i}", port=free_port()) for i in (1, 2)]
    sides: dict[str, Side] = {}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SIDES}
    try:
        url = start_cluster(ha, brokers)
        port = free_port()
        env = infra.env(
            url,
            LARM_API_PORT=str(port),
            LARM_MQTT_PATHS=json.dumps([f"127.0.0.1:{b.port}" for b in brokers]),
        )
        procs, _ = services(root, env, brokers)
        sides["ha"] = Side(
            api=f"http://127.0.0.1:{port}", database_url=url, ports=[brokers[0].port], procs=procs
        )
        sides["single"] = _single(infra)
        for name, side in sides.items():
            if not wait_for(lambda side=side: ready(side.api), timeout=60):
                raise RuntimeError(f"the {name} setup did not become ready (logs in {infra.root})")
        for rnd in range(rounds):
            for name in order(rnd):
                timed = _timed(sides[name], rnd, infra, name, alarms, rate_per_s, background)
                runs[name].append(timed)
    finally:
        for side in sides.values():
            for proc in side.procs:
                stop(proc)
        ha.stop()
        for broker in brokers:
            broker.stop()
    for node in ha.nodes:  # hundreds of MB; the logs stay
        shutil.rmtree(node.data_dir, ignore_errors=True)
    return summary(runs)


def _single(infra: BenchInfra) -> Side:
    url = infra.database("bench_single")
    port = free_port()
    env = infra.env(url, LARM_API_PORT=str(port), LARM_INGEST_INSTANCE="single")
    procs = [
        larmkedja([name], env, infra.root / f"single-{name}.log")
        for name in ("ingest", "engine", "api")
    ]
    return Side(
        api=f"http://127.0.0.1:{port}",
        database_url=url,
        ports=[infra.broker.port],
        procs=procs,
    )


def _timed(
    side: Side,
    rnd: int,
    infra: BenchInfra,
    name: str,
    alarms: int,
    rate: float,
    background: float,
) -> dict[str, Any]:
    result = Latency()
    measure_latency(
        side.api,
        side.database_url,
        side.ports,
        alarms=alarms,
        rate=rate,
        background_rate=background,
        ingest_pid=side.procs[0].pid,
        into=result,
        root=infra.root / "ha-rounds" / f"{name}-{rnd}",
        alarm_prefix=f"r{rnd}",
    )
    return figures(result)


def _ratio(ha: dict[str, Any], single: dict[str, Any], key: str, level: str) -> float | None:
    a, b = single[key][level], ha[key][level]
    return b / a if a and b is not None else None


def summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """HA ÷ single per round at p50 and p99 of alarm → WebSocket, and their medians."""
    ratios: dict[str, list[float]] = {}
    for level in ("p50", "p99"):
        pairs = zip(runs["ha"], runs["single"], strict=True)
        found = [_ratio(h, s, "websocket_ms", level) for h, s in pairs]
        ratios[level] = [r for r in found if r is not None]
    return {
        "runs": runs,
        "ratios": ratios,
        "median": {k: statistics.median(v) if v else None for k, v in ratios.items()},
    }


def _ms(s: dict[str, Any]) -> str:
    if s["p50"] is None:
        return "n/a"
    return f"p50 {s['p50']:.1f} / p99 {s['p99']:.1f} / max {s['max']:.1f} ms"


def ha_rounds_table(report: dict[str, Any]) -> str:
    r = report["ha_rounds"]
    background = float(report["options"]["background"])
    head = (
        f"larmkedja bench --ha-latency --ha-rounds  {report['started_at']}"
        f"  ({report['machine']['cpus']} CPUs)"
    )
    lines = [
        head,
        "-" * len(head),
        f"alarm → WebSocket under {background:,.0f} heartbeats/s; HA: two paths, devices"
        " failing over (busy cores of the machine while timed)",
    ]
    runs = r["runs"]
    for rnd in range(len(runs["single"])):
        s, h = runs["single"][rnd], runs["ha"][rnd]
        p50 = _ratio(h, s, "websocket_ms", "p50")
        p99 = _ratio(h, s, "websocket_ms", "p99")
        lines.append(
            f"  round {rnd + 1} ({' then '.join(order(rnd))}): single {_ms(s['websocket_ms'])}"
            f" ({s['machine_busy_cores'] or 0:.2f}); HA {_ms(h['websocket_ms'])}"
            f" ({h['machine_busy_cores'] or 0:.2f})"
            + ("" if p50 is None or p99 is None else f"; HA ÷ single p50 {p50:.2f}, p99 {p99:.2f}")
        )
    for level in ("p50", "p99"):
        values = r["ratios"][level]
        if values:
            lines.append(
                f"  HA ÷ single, {level}: median {r['median'][level]:.2f}"
                f" (rounds {min(values):.2f}-{max(values):.2f})"
            )
    for label, key in SPLIT:
        medians = {
            name: statistics.median(x[key]["p50"] for x in runs[name] if x[key]["p50"] is not None)
            for name in SIDES
            if any(x[key]["p50"] is not None for x in runs[name])
        }
        if len(medians) == len(SIDES):
            lines.append(
                f"  {label}: p50 (median of the rounds) single {medians['single']:.1f} ms,"
                f" HA {medians['ha']:.1f} ms"
            )
    return "\n".join(lines)
