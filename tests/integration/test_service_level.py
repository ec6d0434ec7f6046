"""The service-level report against an independent computation: Hypothesis generates a month
of alarms (answer times, tests, technical ones), escalations (arrivals), night checks and
offline episodes for two sites, the rows go into the real database, and every figure of the
report (JSON and CSV) is recomputed here in Python from what was generated."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import Broker
from tests.helpers import running_api, settings_for, token

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Europe/Stockholm")
SINCE = datetime(2026, 11, 1, tzinfo=TZ)
UNTIL = datetime(2026, 12, 1, tzinfo=TZ)
MONTH_S = (UNTIL - SINCE).total_seconds()
KINDS = (
    ("alarm.button", "device", 1),
    ("alarm.fall", "device", 1),
    ("device.offline", "system", 4),
)


@dataclass(frozen=True)
class Gen:
    site: str
    at_s: float  # seconds after SINCE (negative or past the month: outside the period)
    kind: int
    test: bool
    answer_s: float | None
    arrival_s: float | None  # an escalation of it that reached the door
    rural: bool  # its device is a person's in a rural area (the arrival promise is 3600 s)


alarm = st.builds(
    Gen,
    site=st.sampled_from(["norr", "syd"]),
    # Whole milliseconds: what timestamptz keeps exactly (a boundary case stays one).
    at_s=st.integers(-86_400_000, int(MONTH_S) * 1000 + 86_400_000).map(lambda ms: ms / 1000),
    kind=st.integers(0, 2),
    test=st.booleans(),
    answer_s=st.none()
    | st.sampled_from([60.0, 180.0])
    | st.integers(500, 900_000).map(lambda ms: ms / 1000),
    arrival_s=st.none()
    | st.sampled_from([1800.0, 3600.0])
    | st.integers(60_000, 7_200_000).map(lambda ms: ms / 1000),
    rural=st.booleans(),
)
PROMISE = {False: 1800.0, True: 3600.0}
check_states = st.lists(
    st.sampled_from(["done_ok", "missed", "escalated", "rechecked_ok"]), max_size=12
)


def pct(values: list[float], q: float) -> float | None:
    """percentile_cont: linear between the two nearest values."""
    if not values:
        return None
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


ANSWER_BOUNDS = [10, 20, 30, 45, 60, 90, 120, 180, 300, 600]
ARRIVAL_BOUNDS = [600, 1200, 1800, 2400, 3000, 3600, 4500, 5400, 7200]


def histogram(values: list[float], bounds: list[int]) -> list[dict[str, Any]]:
    """Bins (lo, hi], the first from 0, the last unbounded: counted one value at a time."""
    lows, highs = [0, *bounds], [*bounds, None]
    counts = [0] * len(lows)
    for v in values:
        counts[sum(1 for b in bounds if b < v)] += 1
    return [
        {"from_s": lo, "to_s": hi, "count": n}
        for lo, hi, n in zip(lows, highs, counts, strict=True)
    ]


def by_area(arrivals: list[tuple[float, float]]) -> tuple[list[dict[str, Any]], list[Any]]:
    areas, bins = [], []
    for area, promise in (("town", 1800.0), ("rural", 3600.0)):
        mine = [s for s, p in arrivals if p == promise]
        areas.append(
            {
                "area_type": area,
                "promise_s": promise,
                "count": len(mine),
                "p50_s": pct(mine, 0.5),
                "p90_s": pct(mine, 0.9),
                "max_s": max(mine, default=None),
                "within_promise_ratio": (
                    sum(s <= promise for s in mine) / len(mine) if mine else None
                ),
            }
        )
        bins += [{**b, "area_type": area} for b in histogram(mine, ARRIVAL_BOUNDS)]
    return areas, bins


def expected(alarms: list[Gen], checks: list[str], site: str) -> dict[str, Any]:
    mine = [a for a in alarms if a.site == site and 0 <= a.at_s < MONTH_S and not a.test]
    safety = [a for a in mine if KINDS[a.kind][1] == "device"]
    answers = [a.answer_s for a in safety if a.answer_s is not None]
    # An escalation counts by when it was made (here: when its alarm was answered).
    arrivals = [
        (a.arrival_s, PROMISE[a.rural])
        for a in alarms
        if a.site == site
        and not a.test
        and a.arrival_s is not None
        and a.answer_s is not None
        and 0 <= a.at_s + a.answer_s < MONTH_S
    ]
    by_kind: dict[str, int] = {}
    for a in mine:
        by_kind[KINDS[a.kind][0]] = by_kind.get(KINDS[a.kind][0], 0) + 1
    breaches = sorted(
        [("answer_time", a.answer_s) for a in safety if a.answer_s is not None and a.answer_s > 180]
        + [("unanswered", MONTH_S - a.at_s) for a in safety if a.answer_s is None]
        + [("arrival", s) for s, promise in arrivals if s > promise]
        + [("check_missed", None) for c in checks if c == "missed"],
        key=lambda b: (b[0], b[1] or 0),
    )
    hours: dict[int, list[int]] = {}
    for a in safety:
        hour = (SINCE + timedelta(seconds=a.at_s)).astimezone(TZ).hour
        counts = hours.setdefault(hour, [0, 0, 0])
        counts[0] += 1
        counts[1] += a.answer_s is not None and a.answer_s <= 60
        counts[2] += a.answer_s is not None and a.answer_s <= 180
    areas, arrival_bins = by_area(arrivals)
    return {
        "by_hour": {h: tuple(c) for h, c in hours.items()},
        "answer_histogram": histogram(answers, ANSWER_BOUNDS),
        "arrival_by_area": areas,
        "arrival_histogram": arrival_bins,
        "alarms": {"count": len(mine), "by_kind": by_kind},
        "answer": {
            "count": len(answers),
            "mean_s": sum(answers) / len(answers) if answers else None,
            "p50_s": pct(answers, 0.5),
            "p90_s": pct(answers, 0.9),
            "p95_s": pct(answers, 0.95),
            "max_s": max(answers, default=None),
            "within_60s_ratio": sum(s <= 60 for s in answers) / len(answers) if answers else None,
            "within_180s_ratio": sum(s <= 180 for s in answers) / len(answers) if answers else None,
        },
        "arrival": {
            "count": len(arrivals),
            "p50_s": pct([s for s, _ in arrivals], 0.5),
            "p90_s": pct([s for s, _ in arrivals], 0.9),
            "max_s": max((s for s, _ in arrivals), default=None),
            "within_promise_ratio": (
                sum(s <= promise for s, promise in arrivals) / len(arrivals) if arrivals else None
            ),
        },
        "night": {
            "planned": len(checks),
            "done_in_time": checks.count("done_ok"),
            "rechecked": checks.count("rechecked_ok"),
            "missed": checks.count("missed"),
            "escalated": checks.count("escalated"),
        },
        "breaches": breaches,
    }


def store(conn: psycopg.Connection[Any], alarms: list[Gen], checks: list[str]) -> None:
    conn.execute(
        "TRUNCATE alarms, escalations, supervision_checks, supervision_plans, persons CASCADE"
    )
    for n, a in enumerate(alarms):
        kind, source, priority = KINDS[a.kind]
        if a.rural:
            conn.execute(
                "INSERT INTO persons (person_ref, name, address, area_type, updated_by)"
                " VALUES (%s, 'x', 'y', 'rural', 't')",
                (f"P-{n}",),
            )
            conn.execute(
                "INSERT INTO person_devices (device_id, person_ref) VALUES (%s, %s)",
                (f"d-{n}", f"P-{n}"),
            )
        raised = SINCE + timedelta(seconds=a.at_s)
        answered = raised + timedelta(seconds=a.answer_s) if a.answer_s is not None else None
        row = conn.execute(
            "INSERT INTO alarms (site, device_id, kind, priority, source, state, raised_at,"
            " last_event_at, answered_at, answered_by, test) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s) RETURNING alarm_id",
            (
                a.site,
                f"d-{n}",
                kind,
                priority,
                source,
                "answered" if answered else "raised",
                raised,
                raised,
                answered,
                "op" if answered else None,
                a.test,
            ),
        ).fetchone()
        if a.arrival_s is not None and answered is not None:
            conn.execute(
                "INSERT INTO escalations (site, device_id, alarm_id, reason, state, created_at,"
                " created_by, ack_deadline, arrived_at) VALUES (%s, %s, %s, 'x', 'arrived', %s,"
                " 'op', %s, %s)",
                (
                    a.site,
                    f"d-{n}",
                    row[0] if row else None,
                    answered,
                    answered,
                    answered + timedelta(seconds=a.arrival_s),
                ),
            )
    conn.execute(
        "INSERT INTO supervision_plans (plan_id, device_id, site, checks, window_minutes,"
        " timezone, updated_by)"
        " VALUES ('p', 'cam', 'norr', ARRAY['22:00'], 15, 'Europe/Stockholm', 't')"
    )
    for n, state in enumerate(checks):
        at = SINCE + timedelta(days=n, hours=22)
        conn.execute(
            "INSERT INTO supervision_checks (plan_id, night, local_time, site, device_id,"
            " scheduled_for, window_end, state, recheck_due_at) VALUES ('p', %s, '22:00', 'norr',"
            " 'cam', %s, %s, %s, %s)",
            (
                at.date(),
                at,
                at + timedelta(minutes=15),
                state,
                at if state == "rechecked_ok" else None,
            ),
        )


def csv_figures(text: str) -> dict[tuple[str, str], str]:
    return {
        (r["section"], r["name"]): r["value"]
        for r in csv.DictReader(io.StringIO(text))
        if r["section"] != "breach"
    }


def close(got: Any, want: Any) -> bool:
    if want is None or got is None:
        return got is want
    return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-6)


@pytest.mark.timeout(300)
def test_the_report_is_what_an_independent_computation_says(
    database_url: str, broker: Broker
) -> None:
    s = settings_for(database_url, broker.host, broker.port)
    with running_api(s) as url, psycopg.connect(database_url, autocommit=True) as conn:
        supervisor = token(s, "supervisor")

        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
        @given(alarms=st.lists(alarm, max_size=40), checks=check_states)
        # A rural person's arrival in 40 minutes: within its promise, beyond a town's.
        @example(alarms=[Gen("norr", 3600.0, 0, False, 20.0, 2400.0, True)], checks=[])
        def check(alarms: list[Gen], checks: list[str]) -> None:
            store(conn, alarms, checks)
            for site in ("norr", "syd"):
                params = {"site": site, "since": SINCE.isoformat(), "until": UNTIL.isoformat()}
                got = httpx.get(
                    url + "/api/v1/reports/service-level",
                    params=params,
                    headers=supervisor,
                    timeout=30,
                ).json()
                want = expected(alarms, checks if site == "norr" else [], site)
                assert got["alarms"]["count"] == want["alarms"]["count"]
                assert got["alarms"]["by_kind"] == want["alarms"]["by_kind"]
                for section in ("answer", "arrival"):
                    for name, value in want[section].items():
                        assert close(got[section][name], value), (section, name, got[section])
                assert got["night"] == want["night"]
                assert {
                    h["hour"]: (h["alarms"], h["within_60s"], h["within_180s"])
                    for h in got["by_hour"]
                } == want["by_hour"]
                assert got["answer"]["histogram"] == want["answer_histogram"]
                assert got["arrival"]["histogram"] == want["arrival_histogram"]
                for g_area, w_area in zip(
                    got["arrival"]["by_area"], want["arrival_by_area"], strict=True
                ):
                    assert g_area.keys() == w_area.keys()
                    assert all(close(g_area[k], v) for k, v in w_area.items() if k != "area_type")
                    assert g_area["area_type"] == w_area["area_type"]
                breaches = sorted(
                    ((b["what"], b["value_s"]) for b in got["breaches"]),
                    key=lambda b: (b[0], b[1] or 0),
                )
                assert [w for w, _ in breaches] == [w for w, _ in want["breaches"]]
                for (_, g), (_, w) in zip(breaches, want["breaches"], strict=True):
                    assert close(g, w)
                text = httpx.get(
                    url + "/api/v1/reports/service-level.csv",
                    params=params,
                    headers=supervisor,
                    timeout=30,
                ).text
                figures = csv_figures(text)
                for name, value in want["answer"].items():
                    cell = figures[("answer", name)]
                    assert close(float(cell) if cell else None, value)
                assert figures[("night", "missed")] == str(want["night"]["missed"])
                for b in want["answer_histogram"]:
                    name = f"{b['from_s']}-{'' if b['to_s'] is None else b['to_s']}"
                    assert figures[("answer_histogram", name)] == str(b["count"])
                for b in want["arrival_histogram"]:
                    name = f"{b['area_type']}.{b['from_s']}-{b['to_s'] or ''}"
                    assert figures[("arrival_histogram", name)] == str(b["count"])
                for h, (n, w60, w180) in want["by_hour"].items():
                    assert figures[("by_hour", f"{h:02d}.within_60s")] == str(w60)
                    assert figures[("by_hour", f"{h:02d}.within_180s")] == str(w180)
                    assert figures[("by_hour", f"{h:02d}.alarms")] == str(n)
                assert sum(1 for r in text.splitlines() if r.startswith("breach,")) == len(breaches)

        check()


def test_the_report_is_for_supervisors_only(database_url: str, broker: Broker) -> None:
    s = settings_for(database_url, broker.host, broker.port)
    with running_api(s) as url:
        for role, status in (("operator", 403), ("patrol", 403), ("supervisor", 200)):
            got = httpx.get(url + "/api/v1/reports/service-level", headers=token(s, role))
            assert got.status_code == status
        empty = httpx.get(url + "/api/v1/reports/service-level", headers=token(s, "supervisor"))
        assert empty.json()["answer"]["count"] == 0 and empty.json()["breaches"] == []
        until = datetime.now(UTC)
        since = until - timedelta(days=1000)
        long = httpx.get(
            url + "/api/v1/reports/service-level",
            headers=token(s, "supervisor"),
            params={"since": since.isoformat(), "until": until.isoformat()},
        )
        assert datetime.fromisoformat(long.json()["since"]) >= until - timedelta(
            days=400, seconds=1
        )


def test_the_monthly_letter_from_the_command_line(database_url: str) -> None:
    exe = str(Path(sys.executable).with_name("larmkedja"))
    env = {**os.environ, "LARM_DATABASE_URL": database_url}
    run = [exe, "--log-level", "WARNING", "report", "--month", "2026-11"]
    as_csv = subprocess.run(
        [*run, "--format", "csv"], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0][:3] == ["section", "name", "value"]
    assert ["period", "since", "2026-11-01T00:00:00+01:00"] == rows[2][:3]
    as_json = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(as_json.stdout)["until"].startswith("2026-12-01T00:00:00+01:00")
    bad = subprocess.run(
        [*run[:-1], "2026-13"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr


def test_the_service_level_gauges_are_the_shares_of_the_last_day(database_url: str) -> None:
    from prometheus_client import CollectorRegistry

    from alarms.reports.gauges_psycopg import ServiceLevelGauges

    s = settings_for(database_url, "127.0.0.1", 1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for n, answer_s in enumerate((30, 100, 200, 10)):
            conn.execute(
                "INSERT INTO alarms (site, device_id, kind, priority, state, raised_at,"
                " last_event_at, answered_at, answered_by) VALUES ('s', %s, 'alarm.button', 1,"
                " 'answered', now() - make_interval(secs => %s), now(), now(), 'op')",
                (f"g-{n}", answer_s),
            )
        registry = CollectorRegistry()
        ServiceLevelGauges(settings=s, registry=registry).run(conn)
    sample = registry.get_sample_value
    assert sample("larm_answer_within_ratio", {"bound": "60"}) == 0.5
    assert sample("larm_answer_within_ratio", {"bound": "180"}) == 0.75
    assert math.isnan(sample("larm_arrival_within_promise_ratio") or 0.0)


def test_a_night_checks_arrival_is_held_to_the_promise_of_its_persons_area(
    database_url: str, broker: Broker
) -> None:
    """The escalation of a night check names the plan, not an alarm: the person of the plan
    gives the area. 50 minutes is within a rural person's promise (60) and not a town's (30)."""
    made = SINCE + timedelta(days=3)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for ref, area in (("P-r", "rural"), ("P-t", "town")):
            conn.execute(
                "INSERT INTO persons (person_ref, name, address, area_type, updated_by)"
                " VALUES (%s, 'x', 'y', %s, 't')",
                (ref, area),
            )
            conn.execute(
                "INSERT INTO person_plans (plan_id, person_ref) VALUES (%s, %s)",
                (f"plan-{area}", ref),
            )
            conn.execute(
                "INSERT INTO escalations (site, device_id, plan_id, reason, state, created_at,"
                " created_by, ack_deadline, arrived_at) VALUES ('norr', %s, %s, 'x', 'arrived',"
                " %s, 'system', %s, %s)",
                (f"cam-{area}", f"plan-{area}", made, made, made + timedelta(minutes=50)),
            )
    s = settings_for(database_url, broker.host, broker.port)
    with running_api(s) as url:
        params = {"site": "norr", "since": SINCE.isoformat(), "until": UNTIL.isoformat()}
        got = httpx.get(
            url + "/api/v1/reports/service-level", params=params, headers=token(s, "supervisor")
        ).json()
    assert got["arrival"]["count"] == 2
    assert got["arrival"]["within_promise_ratio"] == 0.5
    assert [(b["what"], b["value_s"]) for b in got["breaches"]] == [("arrival", 3000.0)]


def test_availability_of_a_period_not_yet_over_counts_only_the_hours_gone(
    database_url: str, broker: Broker
) -> None:
    """The report page opens on the current month: its end is in the future. A device seen for
    two hours and offline for the last one was online half the time, not 99 % of a month of
    hours that have not come yet."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at)"
            " VALUES ('d-1', 'norr', now() - interval '2 hours', now(), now())"
        )
        conn.execute(
            "INSERT INTO alerts (site, kind, severity, subject, details, raised_at)"
            " VALUES ('norr', 'device.offline', 'critical', 'd-1', '{}', now() - interval '1 hour')"
        )
    s = settings_for(database_url, broker.host, broker.port)
    now = datetime.now(UTC)
    with running_api(s) as url:
        params = {
            "site": "norr",
            "since": (now - timedelta(days=1)).isoformat(),
            "until": (now + timedelta(days=20)).isoformat(),
        }
        got = httpx.get(
            url + "/api/v1/reports/service-level", params=params, headers=token(s, "supervisor")
        ).json()
    assert got["availability"]["offline_episodes"] == 1
    assert abs(got["availability"]["online_ratio"] - 0.5) < 0.01, got["availability"]
