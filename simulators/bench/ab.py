"""`larmkedja bench --ab 'LARM_INGEST_WRITERS=3'`: one change to ingest told apart from the
machine's own drift.

On this machine the same drain moved ±20 % between runs minutes apart (raw COPY 168,686-
333,932 rows/s within an hour, docs/bench.md), so a step of 10-15 % measured by two separate
`make bench` runs says nothing. Here one backlog is preloaded into a persistent session per
drain, then rounds of two v5 one-process drains are run back to back, ingest as it is (A) and
with the settings changed (B), the order alternating each round (A B, B A, A B, …) so a drift
during the run falls on both. Each round gives B ÷ A; the median of the rounds is the answer,
and the spread of the ratios says whether it is one.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from simulators.bench import endtoend
from simulators.bench.infra import BenchInfra
from simulators.bench.load import heartbeats, publish_all


def parse_change(text: str) -> dict[str, str]:
    """`NAME=VALUE,NAME=VALUE` → the environment B adds (LARM_* settings)."""
    change: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("LARM_"):
            raise ValueError(f"--ab takes LARM_NAME=VALUE pairs, not {item!r}")
        change[name] = value
    if not change:
        raise ValueError("--ab names no setting")
    return change


def _name(side: str, rnd: int) -> str:
    return f"ab-{side}-{rnd}"


def _sides(rnd: int) -> tuple[str, str]:
    """Which drain goes first in round `rnd` (from 0): A in even rounds, B in odd ones."""
    return ("a", "b") if rnd % 2 == 0 else ("b", "a")


def ab_drain(
    infra: BenchInfra, *, change: Mapping[str, str], rounds: int, events: int, devices: int
) -> dict[str, Any]:
    """Preload one backlog for every drain, then the rounds; the rates and B ÷ A per round."""
    host, port = "127.0.0.1", infra.broker.port
    for rnd in range(rounds):
        for side in ("a", "b"):
            name = _name(side, rnd)
            endtoend.ingest_session(host, port, group=name, instance=f"{name}-0")
    publish_all(host, port, heartbeats(events, devices=devices))
    pairs: list[dict[str, float]] = []
    cpu: list[dict[str, float]] = []
    for rnd in range(rounds):
        rates: dict[str, float] = {}
        cpu_ms: dict[str, float] = {}
        for side in _sides(rnd):
            name = _name(side, rnd)
            run = endtoend.drain_ingest(
                infra,
                group=name,
                instances=[f"{name}-0"],
                database_url=infra.database(f"bench_{name.replace('-', '_')}"),
                expected=events,
                extra_env=change if side == "b" else {},
            )
            rates[side] = run.rate
            cpu_ms[side] = sum(run.cpu_s) / events * 1e6
        pairs.append(rates)
        cpu.append(cpu_ms)
    return summary(pairs, change, cpu=cpu)


def summary(
    pairs: list[dict[str, float]],
    change: Mapping[str, str],
    *,
    cpu: list[dict[str, float]] | None = None,
) -> dict[str, Any]:
    """B ÷ A per round and its median; `cpu`: each side's CPU ms per 1,000 events per round
    (the whole process, start-up included, as part 2 counts it)."""
    ratios = [p["b"] / p["a"] for p in pairs if p["a"] > 0]
    return {
        "change": dict(change),
        "rounds": pairs,
        "ratios": ratios,
        "median_ratio": statistics.median(ratios) if ratios else None,
        "cpu_ms_per_1000": cpu or [],
    }


def ab_table(report: dict[str, Any]) -> str:
    ab = report["ab"]
    change = ", ".join(f"{k}={v}" for k, v in ab["change"].items())
    head = f"larmkedja bench --ab  {report['started_at']}  ({report['machine']['cpus']} CPUs)"
    lines = [head, "-" * len(head), f"ingest v5, 1 process; A as it is, B with {change}"]
    cpu = ab.get("cpu_ms_per_1000") or [{}] * len(ab["rounds"])
    for rnd, (pair, ratio) in enumerate(zip(ab["rounds"], ab["ratios"], strict=True)):
        order = " then ".join(side.upper() for side in _sides(rnd))
        ms = cpu[rnd]
        cpu_text = f"; CPU ms per 1,000 A {ms['a']:.0f}, B {ms['b']:.0f}" if ms else ""
        lines.append(
            f"  round {rnd + 1} ({order}): A {pair['a']:,.0f} ev/s, B {pair['b']:,.0f} ev/s,"
            f" B ÷ A {ratio:.2f}{cpu_text}"
        )
    if ab["median_ratio"] is not None:
        lines.append(
            f"  B ÷ A: median {ab['median_ratio']:.2f}"
            f" (rounds {min(ab['ratios']):.2f}-{max(ab['ratios']):.2f})"
        )
    return "\n".join(lines)
