"""The simulated fleet against the real stack: devices publish, staff act through the API."""

from __future__ import annotations

import threading

import httpx
import pytest

from simulators.runner import run_simulation
from simulators.scenario import Delay, Night, Scenario, Staff
from tests.conftest import Broker
from tests.helpers import (
    running_api,
    running_engine,
    running_ingest,
    scalar,
    settings_for,
    token,
    wait_until,
)

pytestmark = pytest.mark.e2e


def test_a_small_fleet_moves_the_queue_the_kpis_and_the_night(
    database_url: str, broker: Broker
) -> None:
    s = settings_for(database_url, broker.host, broker.port)
    scenario = Scenario(
        seed=3,
        sites=["sim"],
        alarms=20,
        cameras=2,
        heartbeat_s=(5, 8),
        alarm_rate_per_device_day=86_400 / 20,  # one press every ~20 s per device
        battery_report_s=10,
        duration_s=14,
        night=Night(
            checks_from_start_s=[4], window_minutes=0.2, missed_p=0, not_seen_p=0, needs_help_p=0
        ),
        staff=Staff(
            answer_delay=Delay(median_s=1, sigma=0.2),
            resolve_delay=Delay(median_s=1, sigma=0.2),
            escalate_p=0,
        ),
    )
    with running_ingest(s), running_engine(s), running_api(s) as url:
        sent = run_simulation(
            settings=s,
            scenario=scenario,
            api_url=url,
            stop=threading.Event(),
            progress_every_s=60,
        )
        wait_until(
            lambda: scalar(database_url, "SELECT count(*) FROM events") == sum(sent.values()),
            timeout=5,
            what="every simulated event stored",
        )
        op = token(s, "operator")
        kpi = httpx.get(f"{url}/api/v1/kpi/answer-time", headers=op).json()
    assert sent["heartbeat"] > 40 and sent["battery.report"] > 20
    assert sent["alarm.button"] + sent["alarm.fall"] > 0
    assert scalar(database_url, "SELECT count(*) FROM devices") == 22
    assert kpi["count"] > 0  # the simulated operators answered
    assert scalar(database_url, "SELECT count(*) FROM supervision_plans") == 2
    done = "SELECT count(*) FROM supervision_checks WHERE state = 'done_ok'"
    assert scalar(database_url, done) == 2
