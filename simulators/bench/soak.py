"""The soak: all of Sweden's heartbeat rate (4,000 events/s) for a long while against ingest,
engine and API as processes; memory sampled all along (its slope per hour), errors counted."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulators.bench.infra import BenchInfra, count, larmkedja, rss_mb, stop, wait_for
from simulators.bench.load import background


@dataclass
class Soak:
    minutes: float
    rate: float
    sent: int = 0
    stored: int = 0
    dead_letters: int = 0
    db_errors: int = 0
    error_lines: int = 0
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def slope_mb_per_h(self, name: str, *, skip_s: float = 60.0) -> float | None:
        """Least-squares slope of RSS after the warm-up (MB per hour)."""
        points = [(t, mb) for t, mb in self.samples.get(name, []) if t >= skip_s]
        if len(points) < 3:
            return None
        return float(
            statistics.linear_regression([t for t, _ in points], [mb for _, mb in points]).slope
            * 3600
        )

    def report(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "rate": self.rate,
            "achieved_rate": self.sent / (self.minutes * 60) if self.minutes else 0.0,
            "sent": self.sent,
            "stored": self.stored,
            "lost": self.sent - self.stored,
            "dead_letters": self.dead_letters,
            "db_errors": self.db_errors,
            "error_log_lines": self.error_lines,
            "rss_mb": {
                name: {
                    "start": s[0][1],
                    "end": s[-1][1],
                    "slope_mb_per_h": self.slope_mb_per_h(name),
                    # warm-up or growth: the second half alone
                    "slope_second_half_mb_per_h": self.slope_mb_per_h(
                        name, skip_s=self.minutes * 30
                    ),
                    "samples": [(round(t), round(mb, 1)) for t, mb in s],
                }
                for name, s in self.samples.items()
                if s
            },
        }


def soak(infra: BenchInfra, *, minutes: float, rate: float = 4000.0) -> Soak:
    from devstack.procs import free_port

    database_url = infra.database("bench_soak")
    port = free_port()
    metrics = free_port()
    env = infra.env(
        database_url,
        LARM_API_PORT=str(port),
        LARM_INGEST_INSTANCE="soak",
        LARM_INGEST_METRICS_PORT=str(metrics),
    )
    procs = {
        name: larmkedja([name], env, infra.root / f"soak-{name}.log")
        for name in ("ingest", "engine", "api")
    }
    result = Soak(minutes=minutes, rate=rate)
    try:
        wait_for(lambda: _up(f"http://127.0.0.1:{port}/healthz"), timeout=30)
        seconds = minutes * 60
        load = background([infra.broker.port], rate=rate, seconds=seconds)
        started = time.monotonic()
        while load.poll() is None:
            elapsed = time.monotonic() - started
            for name, proc in procs.items():
                result.samples.setdefault(name, []).append((elapsed, rss_mb(proc.pid)))
            time.sleep(min(15.0, max(1.0, seconds / 40)))
        out, _ = load.communicate(timeout=60)
        result.sent = int(out.strip() or 0)
        wait_for(
            lambda: count(database_url, "SELECT count(*) FROM event_ids") >= result.sent,
            timeout=120,
        )
        result.stored = count(database_url, "SELECT count(*) FROM event_ids")
        result.dead_letters = count(database_url, "SELECT count(*) FROM dead_letters")
        result.db_errors = _db_errors(f"http://127.0.0.1:{metrics}/metrics")
    finally:
        for proc in procs.values():
            stop(proc)
    result.error_lines = sum(
        line.count(" ERROR ")
        for name in procs
        for line in (infra.root / f"soak-{name}.log").read_text(errors="replace").splitlines()
    )
    return result


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).is_success
    except httpx.HTTPError:
        return False


def _db_errors(url: str) -> int:
    total = 0.0
    for line in httpx.get(url, timeout=5).text.splitlines():
        if line.startswith("larm_ingest_db_errors_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)
