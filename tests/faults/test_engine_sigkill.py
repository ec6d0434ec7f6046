"""Fault 4: SIGKILL the engine (the owner of deadlines) with an unanswered alarm, a pending
re-check and an escalation's acknowledgement deadline; restart two engines: every overdue one
fires at once, none twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from larmkedja.events import Kind
from tests.conftest import Broker
from tests.helpers import (
    make_event,
    publish_all,
    running_api,
    running_ingest,
    scalar,
    settings_for,
    token,
    wait_until,
)
from tests.integration.test_night import FAST, put_plan, result

pytestmark = pytest.mark.integration

FIRED_AFTER_ELECTION = """
SELECT extract(epoch FROM e.created_at - l.elected_at)
FROM escalations e, engine_leadership l WHERE e.plan_id = 'k-recheck'
"""


def test_killing_the_engine_with_deadlines_pending_fires_each_once_after_restart(
    database_url: str, broker: Broker, tmp_path: Path
) -> None:
    s = settings_for(database_url, broker.host, broker.port, **FAST, unanswered_alert_s=3)
    env = {
        **os.environ,
        "LARM_DATABASE_URL": database_url,
        "LARM_MQTT_HOST": broker.host,
        "LARM_MQTT_PORT": str(broker.port),
        "LARM_ENGINE_METRICS_PORT": "0",
        **{f"LARM_{k.upper()}": str(v) for k, v in FAST.items()},
        "LARM_UNANSWERED_ALERT_S": "3",
    }
    exe = str(Path(sys.executable).with_name("larmkedja"))
    escalations = "SELECT count(*) FROM escalations"
    unack = "SELECT count(*) FROM alerts WHERE kind = 'escalation.unacknowledged'"

    with (
        (tmp_path / "engine.log").open("ab") as log,
        running_ingest(s),
        running_api(s) as url,
    ):

        def engine() -> subprocess.Popen[bytes]:
            return subprocess.Popen([exe, "engine"], env=env, stdout=log, stderr=subprocess.STDOUT)

        sup = token(s, "supervisor")
        beats = [make_event(f"cam-{i}", Kind.HEARTBEAT, {"interval_s": 3600}) for i in (1, 2)]
        publish_all(broker.host, broker.port, [(e.topic("natt"), e.to_json()) for e in beats])
        # the cameras must be known before their night starts (else: "camera offline")
        wait_until(lambda: scalar(database_url, "SELECT count(*) FROM devices") == 2, timeout=3)
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        put_plan(url, sup, "k-recheck", "cam-1", at)
        put_plan(url, sup, "k-esc", "cam-2", at)
        waiting = make_event("d-waits", Kind.ALARM_BUTTON)  # nobody answers it
        publish_all(broker.host, broker.port, [(waiting.topic("natt"), waiting.to_json())])
        first = engine()
        try:
            wait_until(lambda: datetime.now(UTC) >= at, timeout=5)
            results = [
                result("cam-1", "k-recheck", at, "not_seen"),
                result("cam-2", "k-esc", at, "needs_help"),
            ]
            messages = [(e.topic("natt"), e.to_json()) for e in results]
            publish_all(broker.host, broker.port, messages)
            wait_until(lambda: scalar(database_url, escalations) == 1, timeout=5)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(5)
        # Down while the re-check deadline (1.2 s + 3 s) and the ack deadline (6 s) pass.
        time.sleep(6.5)
        assert scalar(database_url, escalations) == 1
        second, third = engine(), engine()  # two at once: still each fires once
        try:
            wait_until(
                lambda: scalar(database_url, escalations) == 2 and scalar(database_url, unack) >= 1,
                timeout=10,  # two Python processes starting, on two slow cores
                what="the overdue deadlines",
            )
            # At once: at the new owner's first ticks (0.1 s apart), from when it took the lock
            # (timed in the database, not from the processes' start: that took 3.3 s once).
            late = scalar(database_url, FIRED_AFTER_ELECTION)
            assert 0 <= late < 1.0, late
            time.sleep(1.0)
        finally:
            for proc in (second, third):
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
    assert scalar(database_url, f"{escalations} WHERE plan_id = 'k-recheck'") == 1
    # the waiting alarm and the needs-help one: one alert each, never two for two engines
    unanswered = "SELECT count(*) FROM alerts WHERE kind = 'alarm.unanswered'"
    assert scalar(database_url, unanswered) == scalar(database_url, "SELECT count(*) FROM alarms")
    assert scalar(database_url, unanswered) == 2
    firings = "SELECT sum(unanswered_alerts) FROM alarms"
    reminders = "SELECT count(*) FROM outbox WHERE payload->>'kind' = 'alarm.unanswered'"
    assert scalar(database_url, reminders) == scalar(database_url, firings)
    assert scalar(database_url, unack) == 1  # the overdue one, not two for two engines
    assert scalar(database_url, "SELECT unack_alerts FROM escalations WHERE plan_id = 'k-esc'") == 1
    published = "SELECT count(*) FROM outbox WHERE payload->>'kind' = 'escalation.unacknowledged'"
    assert scalar(database_url, published) == 1
