"""Fault 5: two instances of every service at once: no duplicate alarm, alert or escalation."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx
import pytest

from devstack.procs import free_port
from larmkedja.settings import Settings
from tests.conftest import Broker
from tests.faults.burst import Burst
from tests.faults.conftest import Services
from tests.helpers import scalar, token, wait_until

pytestmark = pytest.mark.integration


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).is_success
    except httpx.HTTPError:
        return False


@pytest.mark.timeout(180)
def test_two_of_every_service_make_no_duplicates(
    services: Services, broker: Broker, database_url: str
) -> None:
    services.extra_env = {
        "LARM_UNANSWERED_ALERT_S": "2",
        "LARM_ENGINE_TICK_S": "0.2",
        "LARM_INGEST_SHARE_GROUP": "ingest",
    }
    services.ingest("twin-a")
    services.ingest("twin-b")
    services.start("engine", LARM_ENGINE_INSTANCE="a")
    services.start("engine", LARM_ENGINE_INSTANCE="b")
    urls = []
    for _ in range(2):
        port = free_port()
        services.start("api", LARM_API_PORT=str(port))
        urls.append(f"http://127.0.0.1:{port}")
    services.wait_ingest_connected(count=2)
    wait_until(lambda: all(ready(u) for u in urls), timeout=30, what="both APIs")

    burst = Burst(10_000, alarm_every=50)  # 200 presses on 40 devices: folds across processes
    burst.publish_in_background(broker.host, broker.port).join(timeout=120)
    wait_until(lambda: burst.stored(database_url) >= burst.total, timeout=60, what="all stored")
    burst.verify(database_url)
    per_alarm = "SELECT count(*) FROM alerts WHERE kind = 'alarm.unanswered'"
    wait_until(lambda: scalar(database_url, per_alarm) == 40, timeout=10, what="40 alerts")
    time.sleep(3)  # the reminders repeat; each firing must be published once
    # Both counts in one statement, so one snapshot: the engine goes on firing reminders (every
    # 2 s), each in one transaction with its outbox row, and two statements once read 80 firings
    # and then 101 outbox rows (a tick committed between them).
    fired, published = scalar(
        database_url,
        "SELECT ARRAY[(SELECT sum(unanswered_alerts) FROM alarms)::bigint,"
        " (SELECT count(*) FROM outbox WHERE payload->>'kind' = 'alarm.unanswered')]",
    )
    assert published == fired
    assert scalar(database_url, per_alarm) == 40  # one alert per alarm, repeated, never twice

    # two operators on two APIs escalate the same alarm at the same moment
    settings = Settings(database_url=database_url)
    op = token(settings, "operator")
    alarm_id = scalar(database_url, "SELECT alarm_id FROM alarms LIMIT 1")

    async def both() -> list[Any]:
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"{u}/api/v1/alarms/{alarm_id}/escalate",
                        headers=op,
                        json={"reason": "both at once"},
                    )
                    for u in urls
                )
            )

    statuses = sorted(r.status_code for r in asyncio.run(both()))
    assert statuses == [200, 409]
    assert scalar(database_url, "SELECT count(*) FROM escalations") == 1
    escalations = "SELECT count(*) FROM outbox WHERE topic LIKE '%%/escalations'"
    wait_until(lambda: scalar(database_url, escalations) == 1, timeout=5)


@pytest.mark.timeout(120)
def test_one_of_two_ingest_processes_down_is_noticed_and_its_share_arrives_later(
    services: Services, broker: Broker, database_url: str
) -> None:
    """Mosquitto deals the shared subscription's messages to a member even while it is down;
    they wait in the broker. The system must say so, and they must arrive when it is back."""
    services.extra_env = {
        "LARM_SERVICE_STALE_S": "3",
        "LARM_ENGINE_TICK_S": "0.2",
        "LARM_INGEST_SHARE_GROUP": "ingest",
    }
    services.ingest("pair-a")
    b = services.ingest("pair-b")
    services.start("engine")
    services.wait_ingest_connected(count=2)
    b.send_signal(signal.SIGKILL)
    b.wait(5)
    silent = "SELECT details FROM alerts WHERE kind = 'system.silent' AND resolved_at IS NULL"

    def noticed() -> bool:  # (an alert from the start, before both beat, may still be open)
        details = scalar(database_url, silent)
        return details is not None and any("pair-b is down" in r for r in details["reasons"])

    wait_until(noticed, timeout=15, what="pair-b noticed as down")
    burst = Burst(2_000)
    burst.publish_in_background(broker.host, broker.port).join(timeout=60)
    time.sleep(2)
    assert burst.stored(database_url) < burst.total  # part of it waits for pair-b
    services.ingest("pair-b")
    wait_until(lambda: burst.stored(database_url) >= burst.total, timeout=60, what="the rest")
    burst.verify(database_url)
    wait_until(lambda: scalar(database_url, silent) is None, timeout=15, what="resolved")
