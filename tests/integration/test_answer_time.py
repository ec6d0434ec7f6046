"""Answer-time monitoring on the real database: KPIs, the rolling-mean alert, unanswered alarms."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.client import Client
from prometheus_client import CollectorRegistry

from alarms.queue.sweeps_psycopg import AnswerTimeSweep, UnansweredSweep
from alarms.runtime.engine import Engine
from alarms.runtime.metrics import EngineMetrics
from larmkedja.events import Kind
from tests.conftest import Broker
from tests.helpers import (
    Subscriber,
    assert_sweep_skips_a_held_row,
    make_event,
    publish_all,
    running_api,
    running_engine,
    running_ingest,
    scalar,
    settings_for,
    token,
    wait_until,
)

pytestmark = pytest.mark.integration

INSERT_ANSWERED = """
INSERT INTO alarms (site, device_id, kind, priority, state, raised_at, last_event_at,
                    answered_at, answered_by)
VALUES (%s, %s, 'alarm.button', 1, 'answered', %s, %s, %s, 'test')
"""


def insert_answered(url: str, rows: list[tuple[str, datetime, float]]) -> None:
    with psycopg.connect(url) as conn:
        for site, answered_at, duration in rows:
            raised = answered_at - timedelta(seconds=duration)
            conn.execute(
                INSERT_ANSWERED, (site, f"d-{uuid.uuid4().hex[:6]}", raised, raised, answered_at)
            )


def reference_percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    durations=st.lists(
        st.integers(min_value=0, max_value=900_000).map(lambda ms: ms / 1000), max_size=40
    )
)
def test_kpi_equals_an_independent_computation(
    database_url: str, broker: Broker, api_url: str, durations: list[float]
) -> None:
    settings_ = settings_for(database_url, broker.host, broker.port)
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM alarms")
    base = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    insert_answered(
        database_url,
        [("solna", base + timedelta(minutes=i), d) for i, d in enumerate(durations)]
        + [("kista", base, 999.0)],  # another site: filtered out
    )
    headers = token(settings_, "supervisor")
    params = {
        "since": base.isoformat(),
        "until": (base + timedelta(days=1)).isoformat(),
        "site": "solna",
    }
    body = httpx.get(f"{api_url}/api/v1/kpi/answer-time", params=params, headers=headers).json()
    assert body["count"] == len(durations)
    assert body["target_mean_s"] == 33
    if not durations:
        assert body["mean_s"] is None and body["mean_above_target"] is False
        return
    mean = sum(durations) / len(durations)
    assert body["mean_s"] == pytest.approx(mean, abs=1e-6)
    assert body["max_s"] == pytest.approx(max(durations), abs=1e-6)
    for q in (50, 90, 95):
        assert body[f"p{q}_s"] == pytest.approx(reference_percentile(durations, q), abs=1e-6)
    assert body["within_60s_ratio"] == pytest.approx(
        sum(d <= 60 for d in durations) / len(durations)
    )
    assert body["mean_above_target"] == (mean > 33)


@pytest.fixture
def api_url(database_url: str, broker: Broker) -> object:
    with running_api(settings_for(database_url, broker.host, broker.port)) as url:
        yield url


def test_kpi_reports_per_hour(database_url: str, broker: Broker, api_url: str) -> None:
    base = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    insert_answered(database_url, [("solna", base + timedelta(minutes=m), 20.0) for m in (1, 2)])
    insert_answered(database_url, [("solna", base + timedelta(minutes=61), 50.0)])
    headers = token(settings_for(database_url, broker.host, broker.port), "operator")
    params = {
        "since": base.isoformat(),
        "until": (base + timedelta(hours=3)).isoformat(),
        "bucket": "hour",
    }
    body = httpx.get(f"{api_url}/api/v1/kpi/answer-time", params=params, headers=headers).json()
    assert [(b["count"], b["mean_s"]) for b in body["buckets"]] == [(2, 20.0), (1, 50.0)]
    assert body["count"] == 3 and body["mean_s"] == 30.0


class _Offline(Client):
    """No broker for this engine: the test reads alerts from the database, ticks by hand."""

    def __init__(self) -> None:
        from paho.mqtt.enums import CallbackAPIVersion

        super().__init__(callback_api_version=CallbackAPIVersion.VERSION2)


def test_mean_alert_fires_exactly_when_the_rolling_mean_crosses(
    database_url: str, broker: Broker
) -> None:
    s = settings_for(database_url, broker.host, broker.port, answer_window_s=3600)
    metrics = EngineMetrics(registry=CollectorRegistry())
    engine = Engine(
        settings=s,
        sweeps=[AnswerTimeSweep(settings=s, registry=metrics.registry)],
        client=_Offline(),
        metrics=metrics,
    )
    now = datetime.now(UTC) - timedelta(seconds=1)
    answered: list[float] = []
    # up, up, over, still over, back under, under, over again
    for duration in [20.0, 30.0, 80.0, 40.0, 1.0, 5.0, 300.0]:
        answered.append(duration)
        insert_answered(database_url, [("solna", now, duration)])
        engine.tick()
        mean = sum(answered) / len(answered)
        active = scalar(
            database_url,
            "SELECT count(*) FROM alerts WHERE kind = 'answer_time.mean_above_target'"
            " AND subject = 'solna' AND resolved_at IS NULL",
        )
        assert active == (1 if mean > 33 else 0), (answered, mean)
    with psycopg.connect(database_url) as conn:
        published = [
            r[0]["state"]
            for r in conn.execute(
                "SELECT payload FROM outbox WHERE topic = 'larm/v1/solna/alerts' ORDER BY id"
            )
        ]
    # One message per crossing: raised when the mean goes above 33 s, resolved when it is back.
    means = [sum(answered[: i + 1]) / (i + 1) for i in range(len(answered))]
    above = [m > 33 for m in means]
    expected: list[str] = []
    for before, after in zip([False, *above], above, strict=False):
        if after and not before:
            expected.append("active")
        if before and not after:
            expected.append("resolved")
    assert published == expected
    engine.close()


def test_unanswered_alarm_alerts_repeats_and_fires_after_an_engine_restart(
    database_url: str, broker: Broker
) -> None:
    s = settings_for(database_url, broker.host, broker.port, unanswered_alert_s=1.0)
    alerts = Subscriber(broker.host, broker.port, "larm/v1/+/alerts")
    try:
        with running_ingest(s), running_api(s) as url:
            press = make_event("d-9", Kind.ALARM_FALL)
            publish_all(broker.host, broker.port, [(press.topic("solna"), press.to_json())])
            # The engine is down while the alarm waits past its deadline.
            wait_until(lambda: scalar(database_url, "SELECT count(*) FROM alarms") == 1, timeout=2)
            time.sleep(1.3)
            assert alerts.payloads() == []
            started = time.monotonic()
            with running_engine(s):
                wait_until(lambda: len(alerts.payloads()) >= 1, timeout=2, what="overdue alert")
                assert time.monotonic() - started < 2.0  # fired at once on start
                wait_until(lambda: len(alerts.payloads()) >= 2, timeout=3, what="a repeat")
                alarm_id = scalar(database_url, "SELECT alarm_id FROM alarms")
                op = token(s, "operator")
                assert httpx.post(f"{url}/api/v1/alarms/{alarm_id}/answer", headers=op).is_success
                wait_until(
                    lambda: json.loads(alerts.payloads()[-1])["state"] == "resolved",
                    timeout=3,
                    what="the resolution",
                )
    finally:
        alerts.close()
    messages = [json.loads(p) for p in alerts.payloads()]
    assert {m["kind"] for m in messages} == {"alarm.unanswered"}
    assert len({m["alert_id"] for m in messages}) == 1  # one alert, repeated, then resolved
    assert [m["state"] for m in messages][-1] == "resolved"
    assert all(m["state"] == "active" for m in messages[:-1])
    assert messages[0]["details"]["device_id"] == "d-9"
    assert messages[1]["details"]["repeat"] >= 2
    assert {"alert_id", "kind", "severity", "subject", "raised_at", "details"} <= messages[0].keys()


def test_every_alert_fires_once_with_two_engines(database_url: str, broker: Broker) -> None:
    s = settings_for(database_url, broker.host, broker.port, unanswered_alert_s=0.5)
    with running_ingest(s):
        presses = [make_event(f"d-{i}", Kind.ALARM_FALL) for i in range(20)]
        publish_all(broker.host, broker.port, [(p.topic("solna"), p.to_json()) for p in presses])
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM alarms") == 20, timeout=3)
        with running_engine(s), running_engine(s):
            wait_until(lambda: scalar(database_url, "SELECT count(*) FROM alerts") == 20, timeout=5)
            time.sleep(0.2)
        fired = scalar(database_url, "SELECT sum(unanswered_alerts) FROM alarms")
        outbox = scalar(
            database_url, "SELECT count(*) FROM outbox WHERE payload->>'kind' = 'alarm.unanswered'"
        )
    assert outbox == fired  # each firing published exactly once


def test_the_unanswered_sweep_skips_an_alarm_another_transaction_holds(
    database_url: str, broker: Broker
) -> None:
    """Ingest resolves a batch's `device.offline` alarms in its own order; a sweep that waited for
    such a row while holding others deadlocked with it (eight times in a 30-minute soak). It now
    skips the row, and takes it at the next tick if the alarm is still raised and due."""
    sweep = UnansweredSweep(settings=settings_for(database_url, broker.host, broker.port))
    assert_sweep_skips_a_held_row(
        database_url,
        sweep,
        due="INSERT INTO alarms (site, device_id, kind, priority, source, raised_at,"
        " last_event_at, unanswered_due_at)"
        " SELECT 'solna', d, 'device.offline', 4, 'system', now() - interval '2 minutes',"
        " now(), now() - interval '1 minute' FROM unnest(ARRAY['d-a', 'd-b', 'd-c']) AS d",
        hold="UPDATE alarms SET event_count = 2 WHERE device_id = 'd-b'",
    )
    with psycopg.connect(database_url) as engine:
        assert sweep.run(engine) == 0  # each fired once: the deadlines moved on
    alerts = "SELECT count(*) FROM alerts WHERE kind = 'alarm.unanswered'"
    assert scalar(database_url, alerts) == 3
