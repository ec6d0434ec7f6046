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

from simulators.bench import endtoend, ha, limits
from simulators.bench.gateway import gateway_load
from simulators.bench.infra import BenchInfra, bench_infra
from simulators.bench.load import heartbeats, publish_all
from simulators.bench.soak import soak

TOPIC_ALL = "larm/v1/+/+/events"
# (name, MQTT protocol of ingest, processes)
INGEST_RUNS = (("v5-1", "5", 1), ("v5-2", "5", 2), ("v311-1", "3.1.1", 1), ("v311-2", "3.1.1", 2))


@dataclass(frozen=True)
class Options:
    events: int = 200_000
    devices: int = 250_000
    alarms: int = 200
    alarm_rate: float = 10.0
    background: float = 4000.0
    state_dir: Path = Path(".state/bench")
    skip_latency: bool = False
    soak_minutes: float = 0.0  # > 0: also the soak, at `background` events/s
    soak_only: bool = False
    ha_latency: bool = False  # only the alarm latency: single machine, then the HA topology


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
        if options.ha_latency:
            report["latency"] = _latency(infra, options)
            for key, paths, both in ha.VARIANTS:
                report[key] = ha.ha_latency(
                    infra,
                    alarms=options.alarms,
                    rate_per_s=options.alarm_rate,
                    background=options.background,
                    paths=paths,
                    send_to_both=both,
                )
        elif not options.soak_only:
            # Latency first, on a quiet broker and database (before the big backlogs).
            if not options.skip_latency:
                report["latency"] = _latency(infra, options)
            report["devices"] = endtoend.device_sweep(infra.database("bench_devices"))
            report["gateway"] = gateway_load(infra).report()
            report["preload"] = _preload(infra, options)
            report["limits"] = _limits(infra, options)
            report["ingest"] = _ingest(infra, options, report["limits"])
    for data in ("pg", "mosquitto"):  # hundreds of MB; the logs stay
        shutil.rmtree(root / data / "data", ignore_errors=True)
    out = options.state_dir / f"bench-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    (options.state_dir / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    report["written_to"] = str(out)
    return report


def _latency(infra: BenchInfra, options: Options) -> dict[str, Any]:
    latency = endtoend.alarm_latency(
        infra,
        database_url=infra.database("bench_latency"),
        alarms=options.alarms,
        rate_per_s=options.alarm_rate,
        background=options.background,
    )
    return {
        "websocket_ms": latency.summary(latency.ws_ms),
        "queue_api_ms": latency.summary(latency.api_ms),
        "publish_to_ingest_ms": latency.summary(latency.to_ingest_ms),
        "background_events": latency.background_sent,
        "rss_mb": {"start": latency.rss_start_mb, "end": latency.rss_end_mb},
    }


def _instances(name: str, processes: int) -> list[str]:
    return [f"{name}-{i}" for i in range(processes)]


def _preload(infra: BenchInfra, options: Options) -> dict[str, float]:
    """Every consumer's session subscribed (and offline), then one backlog for all."""
    host, port = "127.0.0.1", infra.broker.port
    limits.c_client_session(host, port, "bench-c")
    limits.make_session(host, port, "bench-paho", TOPIC_ALL)
    limits.make_session(host, port, "bench-paho311", TOPIC_ALL, v311=True)
    for name, protocol, processes in INGEST_RUNS:
        for instance in _instances(name, processes):
            limits.make_session(
                host,
                port,
                f"larmkedja-ingest-{instance}",
                f"$share/{name}/{TOPIC_ALL}",
                v311=protocol == "3.1.1",
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


def table(report: dict[str, Any]) -> str:
    if "ha_latency" in report:
        return ha.ha_table(report)
    if "limits" not in report:
        return soak_table(report)
    return main_table(report) + ("\n\n" + soak_table(report) if "soak" in report else "")


def soak_table(report: dict[str, Any]) -> str:
    s = report["soak"]
    lines = [
        f"soak: {s['minutes']:g} min at {s['rate']:,.0f} events/s"
        f" (achieved {s.get('achieved_rate', s['rate']):,.0f}/s)",
        f"  sent {s['sent']:,}, stored {s['stored']:,}, lost {s['lost']:,},"
        f" dead letters {s['dead_letters']}, db errors {s['db_errors']},"
        f" ERROR log lines {s['error_log_lines']}",
    ]
    for name, rss in s["rss_mb"].items():
        slope, half = rss["slope_mb_per_h"], rss.get("slope_second_half_mb_per_h")
        lines.append(
            f"  {name:<7} RSS {rss['start']:.0f} → {rss['end']:.0f} MB, slope "
            + ("n/a" if slope is None else f"{slope:+.1f} MB/h")
            + ("" if half is None else f" (second half {half:+.1f} MB/h)")
        )
    return "\n".join(lines)


Row = tuple[str, str, str]


def main_table(report: dict[str, Any]) -> str:
    rows = [
        *_limit_rows(report),
        *_ingest_rows(report),
        *_latency_rows(report),
        *_memory_rows(report),
        *_device_rows(report),
        *_gateway_rows(report),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{a:<{width[0]}}  {b:<{width[1]}}  {c}" for a, b, c in rows]
    head = f"larmkedja bench  {report['started_at']}  ({report['machine']['cpus']} CPUs)"
    targets = (
        "targets: ≥ 20,000 ev/s end to end; ≥ 0.8 of the bare Python consumer; "
        "p99 alarm→queue ≤ 100 ms under 4,000 ev/s; memory flat"
    )
    return "\n".join([head, "-" * len(head), *lines, "", targets])


def _limit_rows(report: dict[str, Any]) -> list[Row]:
    lim = report["limits"]
    return [
        (
            "1. limits",
            "Mosquitto → its C client (mosquitto_sub, QoS 1)",
            f"{lim['mosquitto_c_client_msg_s']:,.0f} msg/s",
        ),
        (
            "",
            "Mosquitto → bare paho consumer, MQTT v5, manual ack",
            f"{lim['bare_paho_consumer_msg_s']:,.0f} msg/s",
        ),
        (
            "",
            "Mosquitto → bare paho consumer, MQTT 3.1.1, manual ack",
            f"{lim['bare_paho_v311_consumer_msg_s']:,.0f} msg/s",
        ),
        ("", "raw COPY into the events hypertable", f"{lim['copy_rows_s']:,.0f} rows/s"),
    ]


def _ingest_rows(report: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for i, run in enumerate(report["ingest"].values()):
        label = "2. larmkedja" if i == 0 else ""
        what = (
            f"ingest, MQTT {run['protocol']}, {run['processes']} process"
            f"{'es' if run['processes'] > 1 else ''}"
        )
        rows.append(
            (
                label,
                what,
                f"{run['events_s']:,.0f} ev/s  "
                f"(÷ bare paho {run['vs_bare_paho_same_protocol']:.2f}, "
                f"÷ C client {run['vs_c_client']:.2f}, ÷ COPY {run['vs_copy']:.2f})",
            )
        )
    return rows


def _memory_rows(report: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name, run in report["ingest"].items():
        rows.append(
            (
                "4. memory" if name == "v5-1" else "",
                f"ingest RSS start → end ({name})",
                " + ".join(
                    f"{a:.0f} → {b:.0f} MB"
                    for a, b in zip(run["rss_mb_start"], run["rss_mb_end"], strict=True)
                ),
            )
        )
    return rows


def _device_rows(report: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    dev = report["devices"]
    rows.append(
        (
            "5. devices",
            f"offline sweep, {dev['devices']:,} registered, none due",
            f"{dev['sweep_idle_ms_median']:.1f} ms (max {dev['sweep_idle_ms_max']:.1f});"
            f" at 2 sweeps/s {dev['core_share_at_2_per_s'] * 100:.0f} % of a core",
        )
    )
    rows.append(
        ("", f"offline sweep, {dev['due']:,} due at once", f"{dev['sweep_with_due_ms']:.0f} ms")
    )
    return rows


def _gateway_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    if "gateway" not in report:
        return []
    g = report["gateway"]
    ack = g["ack_ms"]
    return [
        (
            "6. gateway",
            "SIA DC-09 panels on TCP → gateway → broker → ingest",
            f"{g['acked_per_s']:,.0f} msg/s acked after PUBACK "
            f"(÷ bare paho publisher {g['acked_per_s'] / g['paho_publisher_limit_msg_s']:.2f});"
            f" stored {g['stored']:,} of {g['messages']:,}",
        ),
        (
            "",
            "ACK latency a panel sees",
            f"p50 {ack['p50']:.1f} / p99 {ack['p99']:.1f} / max {ack['max']:.1f} ms;"
            f" gateway {g['cpu_ms_per_1000']:.0f} CPU ms per 1000,"
            f" RSS {g['rss_mb']['start']:.0f} → {g['rss_mb']['end']:.0f} MB",
        ),
        ("", "limit: bare paho QoS 1 publisher", f"{g['paho_publisher_limit_msg_s']:,.0f} msg/s"),
    ]


def _latency_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    if "latency" not in report:
        return []
    lat = report["latency"]
    rows: list[tuple[str, str, str]] = []
    background = float(report["options"]["background"])
    for label, key in (
        ("WebSocket", "websocket_ms"),
        ("queue API", "queue_api_ms"),
        ("of which broker → ingest", "publish_to_ingest_ms"),
    ):
        s = lat[key]
        value = (
            "n/a"
            if s["p50"] is None
            else (f"p50 {s['p50']:.1f} / p99 {s['p99']:.1f} / max {s['max']:.1f} ms (n={s['n']})")
        )
        rows.append(
            (
                "3. alarm →" if not rows else "",
                f"{label}, under {background:,.0f} heartbeats/s",
                value,
            )
        )
    rss = lat["rss_mb"]
    rows.append(
        ("", "ingest RSS during the latency run", f"{rss['start']:.0f} → {rss['end']:.0f} MB")
    )
    return rows


def main(options: Options) -> int:
    started = time.monotonic()
    report = run(options)
    print(table(report))
    print(f"\n{time.monotonic() - started:.0f} s; figures in {report['written_to']}")
    return 0
