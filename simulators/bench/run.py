"""`make bench` / `larmkedja bench`: numbers side by side with the limits of the same run.

Prints a table and writes the figures as JSON under .state/bench/ (the broker and database of
the run are removed afterwards; their logs stay in .state/bench/run-*/)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simulators.bench import endtoend, ha, latency, limits
from simulators.bench.ab import ab_drain
from simulators.bench.gateway import gateway_load
from simulators.bench.ha_rounds import ha_rounds
from simulators.bench.infra import BenchInfra, bench_infra
from simulators.bench.load import heartbeats, publish_all
from simulators.bench.report import month_report
from simulators.bench.soak import soak
from simulators.bench.store import StoreFactory, store_profile
from simulators.bench.table import table

PARTS = ("latency", "devices", "report", "gateway", "ingest", "store")
# (name, MQTT protocol of ingest, processes)
INGEST_RUNS = (("v5-1", "5", 1), ("v5-2", "5", 2), ("v311-1", "3.1.1", 1), ("v311-2", "3.1.1", 2))


@dataclass(frozen=True)
class Options:
    events: int = 200_000
    devices: int = 250_000
    alarms: int = 200
    alarm_rate: float = 10.0
    background: float = 4000.0  # the soak's rate
    backgrounds: tuple[float, ...] = (4000.0, 12000.0)  # the latency runs' heartbeats/s
    field_devices: int = 500  # devices (connections) that send them
    state_dir: Path = Path(".state/bench")
    skip_latency: bool = False
    parts: frozenset[str] = frozenset(PARTS)
    soak_minutes: float = 0.0  # > 0: also the soak, at `background` events/s
    soak_only: bool = False
    ha_latency: bool = False  # only the alarm latency: single machine, then the HA topology
    ha_rounds: int = 0  # > 0: with ha_latency, both up side by side, timed in alternating rounds
    ha_sides: tuple[str, ...] = ("single", "ha")  # which setups the rounds time
    store_factory: StoreFactory | None = None  # part 8 runs only with one (the entry point's)
    ab: dict[str, str] | None = None  # only an A/B of ingest with these settings changed
    ab_rounds: int = 3


def run(options: Options) -> dict[str, Any]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    root = options.state_dir.resolve() / f"run-{stamp}"
    report: dict[str, Any] = {
        "started_at": stamp,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "options": {k: str(v) for k, v in asdict(options).items()},
    }
    with bench_infra(root) as infra:
        if options.soak_minutes > 0:
            report["soak"] = soak(
                infra, minutes=options.soak_minutes, rate=options.background
            ).report()
        if options.ab:
            report["ab"] = ab_drain(
                infra,
                change=options.ab,
                rounds=options.ab_rounds,
                events=options.events,
                devices=options.devices,
            )
        elif options.ha_latency:
            report |= _ha_latency(infra, options)
        elif not options.soak_only:
            # Latency first, on a quiet broker and database (before the big backlogs).
            parts = options.parts
            if "latency" in parts and not options.skip_latency:
                report["latency"] = _latency(infra, options)
            if "devices" in parts:
                report["devices"] = endtoend.device_sweep(infra.database("bench_devices"))
            if "report" in parts:
                report["report"] = month_report(infra.database("bench_report"))
            if "gateway" in parts:
                report["gateway"] = gateway_load(infra).report()
            if "ingest" in parts:
                report["preload"] = _preload(infra, options)
                report["limits"] = _limits(infra, options)
                report["ingest"] = _ingest(infra, options, report["limits"])
            if "store" in parts and options.store_factory is not None:
                report["store"] = store_profile(
                    infra.database("bench_store"), options.store_factory
                )
                if "limits" in report:
                    report["store"]["copy_row_us"] = 1e6 / report["limits"]["copy_rows_s"]
    for data in ("pg", "mosquitto"):  # hundreds of MB; the logs stay
        shutil.rmtree(root / data / "data", ignore_errors=True)
    out = options.state_dir / f"bench-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    (options.state_dir / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    report["written_to"] = str(out)
    return report


def _latency(infra: BenchInfra, options: Options) -> dict[str, Any]:
    """Alarm → operator under the all-of-Sweden heartbeat load and three times it."""
    runs: dict[str, Any] = {}
    for background in options.backgrounds:
        lat = latency.alarm_latency(
            infra,
            database_url=infra.database(f"bench_latency_{background:.0f}"),
            alarms=options.alarms,
            rate_per_s=options.alarm_rate,
            background=background,
            devices=options.field_devices,
        )
        runs[f"{background:.0f}"] = {
            "background": background,
            "devices": lat.devices,
            "background_sent": lat.background_sent,
            "websocket_ms": lat.summary(lat.ws_ms),
            "queue_api_ms": lat.summary(lat.api_ms),
            "publish_to_ingest_ms": lat.summary(lat.to_ingest_ms),
            "ingest_to_commit_ms": lat.summary(lat.to_commit_ms),
            "commit_to_websocket_ms": lat.summary(lat.to_ws_ms),
            "rss_mb": {"start": lat.rss_start_mb, "end": lat.rss_end_mb},
            "cpu_cores": lat.cpu_cores,
        }
    return runs


def _ha_latency(infra: BenchInfra, options: Options) -> dict[str, Any]:
    """The single machine and each HA variant, measured alike (`simulators/bench/ha.py`); with
    `ha_rounds`, side by side in alternating rounds (`simulators/bench/ha_rounds.py`)."""
    if options.ha_rounds > 0:
        return {
            "ha_rounds": ha_rounds(
                infra,
                rounds=options.ha_rounds,
                alarms=options.alarms,
                rate_per_s=options.alarm_rate,
                background=options.background,
                sides=options.ha_sides,
            )
        }
    runs = {
        "single_latency": ha.single_latency(
            infra,
            alarms=options.alarms,
            rate_per_s=options.alarm_rate,
            background_rate=options.background,
        )
    }
    for key, paths, both, niced in ha.VARIANTS:
        runs[key] = ha.ha_latency(
            infra,
            alarms=options.alarms,
            rate_per_s=options.alarm_rate,
            background=options.background,
            paths=paths,
            send_to_both=both,
            off_path_niced=niced,
        )
    return runs


def _instances(name: str, processes: int) -> list[str]:
    return [f"{name}-{i}" for i in range(processes)]


def _preload(infra: BenchInfra, options: Options) -> dict[str, float]:
    """Every consumer's session subscribed (and offline), then one backlog for all."""
    host, port = "127.0.0.1", infra.broker.port
    limits.c_client_session(host, port, "bench-c")
    limits.make_session(host, port, "bench-paho", limits.TOPIC)
    limits.make_session(host, port, "bench-paho311", limits.TOPIC, v311=True)
    limits.make_session(host, port, "bench-tuned", limits.TOPIC)
    for name, protocol, processes in INGEST_RUNS:
        for instance in _instances(name, processes):
            endtoend.ingest_session(
                host, port, group=name, instance=instance, v311=protocol == "3.1.1"
            )
    sent, seconds = publish_all(host, port, heartbeats(options.events, devices=options.devices))
    return {"events": sent, "seconds": seconds, "rate": sent / seconds}


def _limits(infra: BenchInfra, options: Options) -> dict[str, float]:
    host, port, n = "127.0.0.1", infra.broker.port, options.events
    return {
        "mosquitto_c_client_msg_s": limits.drain_c_client(host, port, "bench-c", n).rate,
        "bare_paho_consumer_msg_s": limits.drain_paho(host, port, "bench-paho", n).rate,
        "bare_paho_v311_consumer_msg_s": limits.drain_paho(
            host, port, "bench-paho311", n, v311=True
        ).rate,
        "tuned_consumer_msg_s": limits.drain_tuned(host, port, "bench-tuned", n).rate,
        "copy_rows_s": limits.copy_rate(infra.database("bench_copy"), n).rate,
    }


def _ingest(infra: BenchInfra, options: Options, lim: dict[str, float]) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    for name, protocol, processes in INGEST_RUNS:
        result = endtoend.drain_ingest(
            infra,
            group=name,
            instances=_instances(name, processes),
            database_url=infra.database(f"bench_{name.replace('-', '_')}"),
            expected=options.events,
            protocol=protocol,
        )
        bare = lim[
            "bare_paho_v311_consumer_msg_s" if protocol == "3.1.1" else "bare_paho_consumer_msg_s"
        ]
        runs[name] = {
            "protocol": protocol,
            "processes": processes,
            "events_s": result.rate,
            "vs_bare_paho_same_protocol": result.rate / bare,
            "vs_c_client": result.rate / lim["mosquitto_c_client_msg_s"],
            "vs_copy": result.rate / lim["copy_rows_s"],
            "rss_mb_start": result.rss_start_mb,
            "rss_mb_end": result.rss_end_mb,
            "cpu_ms_per_1000_events": sum(result.cpu_s) / options.events * 1e6,
        }
    return runs


def main(options: Options) -> int:
    started = time.monotonic()
    report = run(options)
    print(table(report))
    print(f"\n{time.monotonic() - started:.0f} s; figures in {report['written_to']}")
    return 0
