"""`larmkedja bench --ha-latency --ha-rounds N`: the HA topology's alarm latency against the
single machine's, told apart from the machine's own drift.

`--ha-latency` alone starts each setup, times it once and stops it. Over five such runs on
2026-12-07 the HA topology's p50 was 1.01-1.37 of the single machine's, and two setups with the
same work on the alarm's path differed by as much as either from the single machine: one run
cannot tell 20 % apart. Here both setups stay up side by side — the single machine (one broker,
one PostgreSQL, ingest, engine, API) and the HA topology (three etcd members, three Patroni
nodes, two brokers, an ingest per broker, two engines, one API) — and rounds time each in turn:
the single machine and the HA topology with devices failing over (every event to the first path
while it answers), and, asked for (`--ha-sides single,ha,ha_both`), with devices sending every
event on both paths, the order reversed every other round so a drift falls on all (not by
default: that side's double writes go to the same cluster, which then carries more data and
checkpoints than the single machine into the next side's timing); each with the field load and
timing of `ha.measure_latency`, its alarms from devices of its own side and round (no device
presses twice); after each timing an operator answers and resolves every open alarm of that
setup, as a centre would, so no round pays for the reminders and the queue of the rounds before
it (without that, both sides' p50 doubled from the first round to the sixth: 1,200 open alarms
each, an `alarm.unanswered` reminder every 5 s for each). Each round gives each HA side ÷ single
at p50 and p99; the medians over the rounds are the answer, their spread says whether it is one.
The setup not being timed runs idle meanwhile; the busy cores of each timed window are printed
beside it. Both databases take a checkpoint before the first round (`checkpoint`).
"""

from __future__ import annotations

import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from devstack.procs import free_port
from simulators.bench.ha import (
    cluster,
    drop_data,
    figures,
    ha_env,
    measure_latency,
    services,
    single_services,
    start_cluster,
    stop_cluster,
)
from simulators.bench.infra import BenchInfra, stop, wait_for
from simulators.bench.latency import Latency, operator_headers, ready

SIDES = ("single", "ha", "ha_both")
LABELS = {
    "single": "one broker, one PostgreSQL",
    "ha": "HA, devices failing over (every event to the first path)",
    "ha_both": "HA, devices sending every event on both paths",
}
SPLIT = (
    ("published → read by ingest", "publish_to_ingest_ms"),
    ("read → committed", "ingest_to_commit_ms"),
    ("committed → WebSocket", "commit_to_websocket_ms"),
)


@dataclass(frozen=True, kw_only=True)
class Side:
    api: str
    database_url: str
    ports: list[int]  # the brokers its devices send every event to
    procs: list[subprocess.Popen[bytes]]  # what it started (stopped at the end)
    ingest: subprocess.Popen[bytes]  # whose memory is reported


def order(rnd: int, sides: Sequence[str] = SIDES) -> tuple[str, ...]:
    """The order of `sides` (the single machine first) in round `rnd` (from 0): as given in even
    rounds, reversed in odd ones."""
    return tuple(sides) if rnd % 2 == 0 else tuple(sides)[::-1]


def ha_rounds(
    infra: BenchInfra,
    *,
    rounds: int,
    alarms: int,
    rate_per_s: float,
    background: float,
    sides: Sequence[str] = SIDES,
) -> dict[str, Any]:
    """Both setups up, then the rounds of `sides` (of `SIDES`, the single machine first); each
    side's figures per round and each HA side ÷ single."""
    if not sides or sides[0] != "single" or not set(sides) <= set(SIDES):
        raise ValueError(f"sides: 'single' first, then any of {', '.join(SIDES[1:])}")
    root = infra.root / "ha-rounds"
    ha, brokers = cluster(root, paths=2)
    setups: dict[str, Side] = {}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    try:
        url = start_cluster(ha, brokers)
        port = free_port()
        procs, _ = services(root, ha_env(infra, url, port, brokers), brokers)
        api = f"http://127.0.0.1:{port}"
        first = [brokers[0].port]
        setups["ha"] = Side(api=api, database_url=url, ports=first, procs=procs, ingest=procs[0])
        # The same services; stopped once (with the side above), so no processes of its own.
        both = [b.port for b in brokers]
        setups["ha_both"] = Side(api=api, database_url=url, ports=both, procs=[], ingest=procs[0])
        setups["single"] = _single(infra)
        for name, side in setups.items():
            if not wait_for(lambda side=side: ready(side.api), timeout=60):
                raise RuntimeError(f"the {name} setup did not become ready (logs in {infra.root})")
        for url in {side.database_url for side in setups.values()}:
            checkpoint(url)
        for rnd in range(rounds):
            for name in order(rnd, sides):
                timed = _timed(setups[name], rnd, infra, name, alarms, rate_per_s, background)
                runs[name].append(timed)
    finally:
        for side in setups.values():
            for proc in side.procs:
                stop(proc)
        stop_cluster(ha, brokers)
    drop_data(ha)
    return summary(runs)


def checkpoint(url: str) -> None:
    """A checkpoint now: every page's first change after it is written whole to the WAL, on
    both setups alike from the first round on, and neither's next timed checkpoint (10 min,
    devstack) falls in the rounds (the fresh HA cluster's first one fell in round 5 before)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def _single(infra: BenchInfra) -> Side:
    url, port, procs = single_services(infra)
    return Side(
        api=f"http://127.0.0.1:{port}",
        database_url=url,
        ports=[infra.broker.port],
        procs=procs,
        ingest=procs[0],
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
        ingest_pid=side.ingest.pid,
        into=result,
        root=infra.root / "ha-rounds" / f"{name}-{rnd}",
        alarm_prefix=f"{name}-r{rnd}",
    )
    resolve_all(side)
    return figures(result)


def resolve_all(side: Side) -> int:
    """Answer and resolve every open alarm of `side` through its API; how many."""
    headers = operator_headers(side.database_url)
    with httpx.Client(base_url=side.api, headers=headers, timeout=10) as client:
        alarms = client.get("/api/v1/alarms", params={"limit": 5000}).raise_for_status().json()
        for alarm in alarms:
            path = f"/api/v1/alarms/{alarm['alarm_id']}"
            if alarm["state"] == "raised" and not _took(client.post(f"{path}/answer")):
                continue
            _took(client.post(f"{path}/resolve", json={"outcome": "test"}))
    return len(alarms)


def _took(response: httpx.Response) -> bool:
    """False for a 409: the alarm changed since it was listed (a technical alarm the engine
    closed when its device came back, say); raises for any other error."""
    if response.status_code == httpx.codes.CONFLICT:
        return False
    response.raise_for_status()
    return True


def _ratio(ha: dict[str, Any], single: dict[str, Any], key: str, level: str) -> float | None:
    a, b = single[key][level], ha[key][level]
    return b / a if a and b is not None else None


def summary(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each HA side ÷ single per round at p50 and p99 of alarm → WebSocket, and the medians."""
    ratios: dict[str, dict[str, list[float]]] = {}
    for name in list(runs)[1:]:
        ratios[name] = {}
        for level in ("p50", "p99"):
            pairs = zip(runs[name], runs["single"], strict=True)
            found = [_ratio(h, s, "websocket_ms", level) for h, s in pairs]
            ratios[name][level] = [r for r in found if r is not None]
    return {
        "runs": runs,
        "ratios": ratios,
        "median": {
            name: {k: statistics.median(v) if v else None for k, v in by_level.items()}
            for name, by_level in ratios.items()
        },
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
        f"alarm → WebSocket under {background:,.0f} heartbeats/s (the machine's busy cores while"
        " timed); " + "; ".join(f"{name}: {LABELS[name]}" for name in r["runs"]),
    ]
    runs = r["runs"]
    sides = list(runs)
    for rnd in range(len(runs["single"])):
        lines.append(f"  round {rnd + 1} ({' then '.join(order(rnd, sides))}):")
        for name in sides:
            x = runs[name][rnd]
            p50 = _ratio(x, runs["single"][rnd], "websocket_ms", "p50")
            p99 = _ratio(x, runs["single"][rnd], "websocket_ms", "p99")
            lines.append(
                f"    {name:<7} {_ms(x['websocket_ms'])} ({x['machine_busy_cores'] or 0:.2f})"
                + (
                    ""
                    if name == "single" or p50 is None or p99 is None
                    else f"; ÷ single p50 {p50:.2f}, p99 {p99:.2f}"
                )
            )
    for name in sides[1:]:
        for level in ("p50", "p99"):
            values = r["ratios"][name][level]
            if values:
                lines.append(
                    f"  {name} ÷ single, {level}: median {r['median'][name][level]:.2f}"
                    f" (rounds {min(values):.2f}-{max(values):.2f})"
                )
    for label, key in SPLIT:
        medians = [
            f"{name} {statistics.median(p):.1f} ms"
            for name in sides
            if (p := [x[key]["p50"] for x in runs[name] if x[key]["p50"] is not None])
        ]
        lines.append(f"  {label}, p50 (median of the rounds): " + ", ".join(medians))
    return "\n".join(lines)
