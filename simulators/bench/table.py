"""The benchmark's table: every figure beside the same run's limits, and the targets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulators.bench.ab import ab_table
from simulators.bench.ha import ha_table
from simulators.bench.ha_rounds import ha_rounds_table

Row = tuple[str, str, str]  # the part's label (on its first row), what, the figure
Line = tuple[str, str]  # what, the figure
PART_KEYS = {"limits", "latency", "devices", "report", "gateway", "store"}

TARGETS = (
    "targets (issue 21): one v5 ingest process ≥ 0.15 of the C client and ≥ 0.15 of COPY at"
    " ≤ 35 CPU ms per 1,000 events;\n  alarm → WebSocket p99 ≤ 100 ms, max ≤ 250 ms under"
    " 4,000 and 12,000 heartbeats/s; gateway ≥ 0.7 of the bare publisher, ACK p99 ≤ 20 ms;"
    " memory flat; the month's report ≤ 2 s"
)


def table(report: dict[str, Any]) -> str:
    if "ha_rounds" in report:
        return ha_rounds_table(report)
    if "single_latency" in report:
        return ha_table(report)
    if "ab" in report:
        return ab_table(report)
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
    rows: list[Row] = []
    for key, label, lines_of in SECTIONS:
        if key in report:  # a part that did not run has no rows
            part = lines_of(report[key])
            rows += [
                (label if i == 0 else "", what, figure) for i, (what, figure) in enumerate(part)
            ]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{a:<{width[0]}}  {b:<{width[1]}}  {c}" for a, b, c in rows]
    head = f"larmkedja bench  {report['started_at']}  ({report['machine']['cpus']} CPUs)"
    return "\n".join([head, "-" * len(head), *lines, "", TARGETS])


def _limit_lines(lim: dict[str, Any]) -> list[Line]:
    return [
        (
            "Mosquitto → its C client (mosquitto_sub, QoS 1)",
            f"{lim['mosquitto_c_client_msg_s']:,.0f} msg/s",
        ),
        (
            "Mosquitto → bare paho consumer, MQTT v5, manual ack",
            f"{lim['bare_paho_consumer_msg_s']:,.0f} msg/s",
        ),
        (
            "Mosquitto → bare paho consumer, MQTT 3.1.1, manual ack",
            f"{lim['bare_paho_v311_consumer_msg_s']:,.0f} msg/s",
        ),
        (
            "Mosquitto → ingest's consumer alone (no parsing, no database), MQTT v5",
            f"{lim['tuned_consumer_msg_s']:,.0f} msg/s"
            f" (÷ bare paho v5 {lim['tuned_consumer_msg_s'] / lim['bare_paho_consumer_msg_s']:.1f})"
            if "tuned_consumer_msg_s" in lim
            else "n/a",
        ),
        ("raw COPY into the events hypertable", f"{lim['copy_rows_s']:,.0f} rows/s"),
    ]


def _ingest_lines(runs: dict[str, Any]) -> list[Line]:
    return [
        (
            f"ingest, MQTT {run['protocol']}, {run['processes']} process"
            f"{'es' if run['processes'] > 1 else ''}",
            f"{run['events_s']:,.0f} ev/s  "
            f"(÷ bare paho {run['vs_bare_paho_same_protocol']:.2f}, "
            f"÷ C client {run['vs_c_client']:.2f}, ÷ COPY {run['vs_copy']:.2f}); "
            f"{run['cpu_ms_per_1000_events']:.0f} CPU ms per 1,000",
        )
        for run in runs.values()
    ]


def _memory_lines(runs: dict[str, Any]) -> list[Line]:
    return [
        (
            f"ingest RSS start → end ({name})",
            " + ".join(
                f"{a:.0f} → {b:.0f} MB"
                for a, b in zip(run["rss_mb_start"], run["rss_mb_end"], strict=True)
            ),
        )
        for name, run in runs.items()
    ]


def _device_lines(dev: dict[str, Any]) -> list[Line]:
    idle = (
        f"{dev['sweep_idle_ms_median']:.1f} ms (max {dev['sweep_idle_ms_max']:.1f});"
        f" at 2 sweeps/s {dev['core_share_at_2_per_s'] * 100:.0f} % of a core"
    )
    return [
        (f"offline sweep, {dev['devices']:,} registered, none due", idle),
        (f"offline sweep, {dev['due']:,} due at once", f"{dev['sweep_with_due_ms']:.0f} ms"),
    ]


def _report_lines(r: dict[str, Any]) -> list[Line]:
    what = f"service level of a month: {r['devices']:,} devices, {r['alarms']:,} alarms"
    took = (
        f"all sites {r['all_sites_s'] * 1000:.0f} ms, one site {r['one_site_s'] * 1000:.0f} ms"
        f" (target 2 s; {r['alarms_counted']:,} alarms counted)"
    )
    return [(what, took)]


def _gateway_lines(g: dict[str, Any]) -> list[Line]:
    ack, limit = g["ack_ms"], g["paho_publisher_limit_msg_s"]
    return [
        (
            "SIA DC-09 panels on TCP → gateway → broker → ingest",
            f"{g['acked_per_s']:,.0f} msg/s acked after PUBACK "
            f"(÷ bare paho publisher {g['acked_per_s'] / limit:.2f});"
            f" stored {g['stored']:,} of {g['messages']:,}",
        ),
        (
            "ACK latency a panel sees",
            f"p50 {ack['p50']:.1f} / p99 {ack['p99']:.1f} / max {ack['max']:.1f} ms;"
            f" gateway {g['cpu_ms_per_1000']:.0f} CPU ms per 1000,"
            f" RSS {g['rss_mb']['start']:.0f} → {g['rss_mb']['end']:.0f} MB",
        ),
        ("limit: bare paho QoS 1 publisher", f"{limit:,.0f} msg/s"),
    ]


def _latency_lines(runs: dict[str, Any]) -> list[Line]:
    lines: list[Line] = []
    for run in runs.values():
        under = f"under {run['background']:,.0f} heartbeats/s from {run['devices']} devices"
        for what, key in (
            (f"WebSocket, {under}", "websocket_ms"),
            ("  queue API (polled every 20 ms)", "queue_api_ms"),
            ("  split: published → read by ingest", "publish_to_ingest_ms"),
            ("         read → committed", "ingest_to_commit_ms"),
            ("         committed → API → WebSocket", "commit_to_websocket_ms"),
        ):
            lines.append((what, _ms(run[key])))
        sent, rss = run["background_sent"], run["rss_mb"]
        lines.append(
            (
                "  heartbeats the broker acknowledged; ingest RSS",
                f"{sent:,}; {rss['start']:.0f} → {rss['end']:.0f} MB",
            )
        )
        if cpu := run.get("cpu_cores"):
            groups = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k != "machine")
            lines.append(
                ("  CPU while timed, cores", f"{groups}; machine {cpu.get('machine', 0):.2f}")
            )
    return lines


def _ms(s: dict[str, Any]) -> str:
    if s["p50"] is None:
        return "n/a"
    return f"p50 {s['p50']:.1f} / p99 {s['p99']:.1f} / max {s['max']:.1f} ms (n={s['n']})"


def _store_lines(st: dict[str, Any]) -> list[Line]:
    lines: list[Line] = []
    for key, what in (("first_seen", "devices first seen"), ("known", "devices known")):
        p = st[key]
        lines.append(
            (
                f"µs per event in one writer, {st['batch']:,}-event batches, {what}",
                f"{p['total_us']:.1f}: COPY + insert {p['copy_and_insert_us']:.1f},"
                f" processors {p['processors_us']:.1f}, commit {p['commit_us']:.1f}",
            )
        )
    if st.get("copy_row_us"):
        lines.append(("raw COPY per row, the same run (part 1)", f"{st['copy_row_us']:.1f}"))
    return lines


# The parts of the main table in their order: the report's key, the part's label and its lines.
SECTIONS: tuple[tuple[str, str, Callable[[dict[str, Any]], list[Line]]], ...] = (
    ("limits", "1. limits", _limit_lines),
    ("ingest", "2. larmkedja", _ingest_lines),
    ("latency", "3. alarm →", _latency_lines),
    ("ingest", "4. memory", _memory_lines),
    ("devices", "5. devices", _device_lines),
    ("report", "7. report", _report_lines),
    ("gateway", "6. gateway", _gateway_lines),
    ("store", "8. store", _store_lines),
)
