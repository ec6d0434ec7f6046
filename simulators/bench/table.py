"""The benchmark's table: every figure beside the same run's limits, and the targets."""

from __future__ import annotations

from typing import Any

from simulators.bench.ha import ha_table

Row = tuple[str, str, str]
PART_KEYS = {"limits", "latency", "devices", "report", "gateway"}

TARGETS = (
    "targets (issue 21): one v5 ingest process ≥ 0.15 of the C client and ≥ 0.15 of COPY at"
    " ≤ 35 CPU ms per 1,000 events;\n  alarm → WebSocket p99 ≤ 100 ms, max ≤ 250 ms under"
    " 4,000 and 12,000 heartbeats/s; gateway ≥ 0.7 of the bare publisher, ACK p99 ≤ 20 ms;"
    " memory flat; the month's report ≤ 2 s"
)


def table(report: dict[str, Any]) -> str:
    if "single_latency" in report:
        return ha_table(report)
    if "soak" in report and report.keys().isdisjoint(PART_KEYS):
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


def main_table(report: dict[str, Any]) -> str:
    rows = [
        *_limit_rows(report),
        *_ingest_rows(report),
        *_latency_rows(report),
        *_memory_rows(report),
        *_device_rows(report),
        *_report_rows(report),
        *_gateway_rows(report),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{a:<{width[0]}}  {b:<{width[1]}}  {c}" for a, b, c in rows]
    head = f"larmkedja bench  {report['started_at']}  ({report['machine']['cpus']} CPUs)"
    return "\n".join([head, "-" * len(head), *lines, "", TARGETS])


def _limit_rows(report: dict[str, Any]) -> list[Row]:
    if "limits" not in report:
        return []
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
        (
            "",
            "Mosquitto → ingest's consumer alone (no parsing, no database), MQTT v5",
            f"{lim['tuned_consumer_msg_s']:,.0f} msg/s"
            f" (÷ bare paho v5 {lim['tuned_consumer_msg_s'] / lim['bare_paho_consumer_msg_s']:.1f})"
            if "tuned_consumer_msg_s" in lim
            else "n/a",
        ),
        ("", "raw COPY into the events hypertable", f"{lim['copy_rows_s']:,.0f} rows/s"),
    ]


def _ingest_rows(report: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for i, run in enumerate(report.get("ingest", {}).values()):
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
                f"÷ C client {run['vs_c_client']:.2f}, ÷ COPY {run['vs_copy']:.2f}); "
                f"{run['cpu_ms_per_1000_events']:.0f} CPU ms per 1,000",
            )
        )
    return rows


def _memory_rows(report: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name, run in report.get("ingest", {}).items():
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
    if "devices" not in report:
        return rows
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


def _report_rows(report: dict[str, Any]) -> list[Row]:
    if "report" not in report:
        return []
    r = report["report"]
    return [
        (
            "7. report",
            f"service level of a month: {r['devices']:,} devices, {r['alarms']:,} alarms",
            f"all sites {r['all_sites_s'] * 1000:.0f} ms, one site {r['one_site_s'] * 1000:.0f} ms"
            f" (target 2 s; {r['alarms_counted']:,} alarms counted)",
        )
    ]


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


def _latency_rows(report: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for run in report.get("latency", {}).values():
        under = f"under {run['background']:,.0f} heartbeats/s from {run['devices']} devices"
        for label, key in (
            (f"WebSocket, {under}", "websocket_ms"),
            ("  queue API (polled every 20 ms)", "queue_api_ms"),
            ("  split: published → read by ingest", "publish_to_ingest_ms"),
            ("         read → committed", "ingest_to_commit_ms"),
            ("         committed → API → WebSocket", "commit_to_websocket_ms"),
        ):
            rows.append(("3. alarm →" if not rows else "", label, _ms(run[key])))
        sent = run["background_sent"]
        rss = run["rss_mb"]
        rows.append(
            (
                "",
                "  heartbeats sent; ingest RSS",
                f"{sent:,}; {rss['start']:.0f} → {rss['end']:.0f} MB",
            )
        )
    return rows


def _ms(s: dict[str, Any]) -> str:
    if s["p50"] is None:
        return "n/a"
    return f"p50 {s['p50']:.1f} / p99 {s['p99']:.1f} / max {s['max']:.1f} ms (n={s['n']})"
