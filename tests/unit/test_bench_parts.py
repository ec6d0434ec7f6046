"""The benchmark's own pieces that need no services: the field load's payloads are contract
events, and the table prints every part it has (and only those)."""

from __future__ import annotations

import gc
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ingest.parse import parse
from larmkedja.events import Kind, ReceivedEvent
from simulators.bench import ha_rounds
from simulators.bench.ab import parse_change, summary
from simulators.bench.field import heartbeat, new_seed
from simulators.bench.ha import figures
from simulators.bench.latency import Latency, _no_collection
from simulators.bench.table import table

NOW = datetime(2026, 12, 6, tzinfo=UTC)
SPLIT = {"p50": 1.0, "p99": 2.0, "max": 3.0, "n": 10}


def test_a_field_heartbeat_is_a_contract_event() -> None:
    payload = heartbeat("f-000001", random.Random(1), NOW.isoformat())
    item = parse(topic="larm/v1/bench/f-000001/events", payload=payload, received_at=NOW)
    assert isinstance(item, ReceivedEvent) and item.event.kind is Kind.HEARTBEAT


def test_the_table_prints_the_parts_that_ran() -> None:
    run = {
        "background": 12000.0,
        "devices": 500,
        "background_sent": 240_000,
        "rss_mb": {"start": 80.0, "end": 90.0},
        "cpu_cores": {"load": 0.2, "broker": 0.3, "machine": 1.5},
        **{
            key: SPLIT
            for key in (
                "websocket_ms",
                "queue_api_ms",
                "publish_to_ingest_ms",
                "ingest_to_commit_ms",
                "commit_to_websocket_ms",
            )
        },
    }
    report = {
        "started_at": "x",
        "machine": {"cpus": 2},
        "options": {},
        "latency": {"12000": run},
    }
    text = table(report)
    assert "under 12,000 heartbeats/s from 500 devices" in text
    assert "read → committed" in text and "p99 2.0" in text
    assert "load 0.20, broker 0.30; machine 1.50" in text
    assert "limits" not in text.split("targets")[0]  # the ingest part did not run


def test_a_report_only_run_prints_its_row() -> None:
    report = {
        "started_at": "x",
        "machine": {"cpus": 2},
        "options": {},
        "report": {
            "devices": 250_000,
            "alarms": 60_000,
            "all_sites_s": 0.5,
            "one_site_s": 0.1,
            "alarms_counted": 60_000,
        },
    }
    assert "all sites 500 ms, one site 100 ms" in table(report)


def test_a_store_profile_prints_each_step_beside_copy() -> None:
    steps = {"copy_and_insert_us": 14.0, "processors_us": 12.0, "commit_us": 2.0}
    store = {
        "batch": 2000,
        "events": 50_000,
        "first_seen": {**steps, "total_us": 28.0},
        "known": {**steps, "total_us": 28.0},
        "copy_row_us": 4.0,
    }
    text = table({"started_at": "x", "machine": {"cpus": 2}, "options": {}, "store": store})
    assert "devices first seen" in text and "devices known" in text
    assert "28.0: COPY + insert 14.0, processors 12.0, commit 2.0" in text
    copy_line = next(line for line in text.splitlines() if "raw COPY per row" in line)
    assert copy_line.endswith(" 4.0")


def test_the_ha_bench_reports_each_run_as_its_table_reads_it() -> None:
    """Both sides of `bench --ha-latency` (the single machine and each HA setup) report their
    figures alike, and the table reads them."""
    run = figures(
        Latency(
            ws_ms=[1.0, 3.0],
            api_ms=[2.0],
            to_ingest_ms=[0.5],
            background_sent=7,
            cpu_cores={"machine": 1.5},
        )
    )
    assert run["websocket_ms"]["max"] == 3.0 and run["queue_api_ms"]["n"] == 1
    report = {
        "started_at": "x",
        "machine": {"cpus": 2},
        "options": {"background": 4000},
        "single_latency": run,
        "ha_latency": run,
    }
    text = table(report)
    acked = "background acknowledged (by each broker): single machine 7, HA, 2 paths, send both 7"
    assert acked in text
    assert "(÷ single: p50 1.00, p99 1.00)" in text
    assert "busy cores while timed: single machine 1.50, HA, 2 paths, send both 1.50" in text


def test_an_ab_takes_settings_and_prints_each_round_and_the_median() -> None:
    change = parse_change("LARM_INGEST_WRITERS=3, LARM_INGEST_BATCH_MAX=1000")
    assert change == {"LARM_INGEST_WRITERS": "3", "LARM_INGEST_BATCH_MAX": "1000"}
    for bad in ("", "WRITERS=3", "LARM_INGEST_WRITERS"):
        with pytest.raises(ValueError):
            parse_change(bad)
    rounds = [{"a": 100.0, "b": 110.0}, {"a": 100.0, "b": 90.0}, {"a": 100.0, "b": 130.0}]
    report = {"started_at": "x", "machine": {"cpus": 2}, "ab": summary(rounds, change)}
    text = table(report)
    assert "round 2 (B then A): A 100 ev/s, B 90 ev/s, B ÷ A 0.90" in text
    assert "B ÷ A: median 1.10 (rounds 0.90-1.30)" in text


def test_ha_rounds_alternate_and_print_ha_over_single_per_round_and_the_median() -> None:
    """`bench --ha-latency --ha-rounds`: the single machine first in even rounds and last in odd
    ones, each HA side ÷ single per round at p50 and p99, their medians, each side's split."""
    assert ha_rounds.order(0) == ("single", "ha", "ha_both")
    assert ha_rounds.order(1) == ("ha_both", "ha", "single")

    def side(p50: float, p99: float) -> dict[str, Any]:
        return figures(
            Latency(
                ws_ms=[p50] * 98 + [p99] * 2,
                to_ingest_ms=[0.5],
                to_commit_ms=[4.0],
                to_ws_ms=[p50],
                cpu_cores={"machine": 1.0},
            )
        )

    runs = {
        "single": [side(10, 40), side(10, 40), side(10, 40)],
        "ha": [side(11, 40), side(15, 60), side(9, 20)],
        "ha_both": [side(20, 80), side(20, 80), side(20, 80)],
    }
    summary = ha_rounds.summary(runs)
    assert summary["median"]["ha"]["p50"] == pytest.approx(1.1)
    report = {
        "started_at": "x",
        "machine": {"cpus": 2},
        "options": {"background": 4000},
        "ha_rounds": summary,
    }
    text = table(report)
    assert "round 2 (ha_both then ha then single)" in text
    assert "ha      p50 15.0 / p99 60.0 / max 60.0 ms (1.00); ÷ single p50 1.50, p99 1.50" in text
    assert "ha ÷ single, p50: median 1.10 (rounds 0.90-1.50)" in text
    assert "ha_both ÷ single, p99: median 2.00 (rounds 2.00-2.00)" in text
    assert "read → committed, p50 (median of the rounds): single 4.0 ms, ha 4.0 ms" in text


def test_the_bench_collects_no_garbage_while_it_times_alarms() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), _no_collection():
        assert not gc.isenabled()
        raise RuntimeError("a timing that failed")
    assert gc.isenabled()


def test_every_run_of_the_field_load_sends_new_event_ids() -> None:
    ts = datetime.now(UTC).isoformat()
    first, second = (
        {parse_id(heartbeat(f"f-{i:06d}", random.Random(seed), ts)) for i in range(3)}
        for seed in (new_seed(), new_seed())
    )
    assert not first & second


def parse_id(payload: bytes) -> str:
    return str(orjson.loads(payload)["event_id"])
