"""Fault: the engine that owns the deadlines hangs (SIGSTOP) or dies (SIGKILL) while a standby
runs. The standby takes over within the lease, fires every overdue deadline once, and the old
owner, woken up, fires nothing (alarms/runtime/leadership_psycopg.py)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import pytest

from larmkedja.events import Kind
from tests.conftest import Broker
from tests.faults.conftest import Services
from tests.helpers import make_event, psycopg_rows, publish_all, scalar, wait_until

pytestmark = pytest.mark.integration

LEADER = "SELECT instance FROM engine_leadership"
SAYS_LEADER = (
    "SELECT (details->>'leader')::bool FROM service_heartbeats"
    " WHERE service = 'engine' AND instance = %s AND seen_at > now() - interval '2 s'"
)
# Every alarm's reminders as published: (alarm, repeat number).
REMINDERS = (
    "SELECT payload->'details'->>'alarm_id', payload->'details'->>'repeat' FROM outbox"
    " WHERE payload->>'kind' = 'alarm.unanswered' AND payload->>'state' = 'active'"
)
OVERDUE = (
    "SELECT count(*) FROM alarms WHERE state = 'raised'"
    " AND unanswered_due_at < now() - interval '2 s'"
)


def press(broker: Broker, n: int, tag: str) -> None:
    events = [make_event(f"{tag}-{i}", Kind.ALARM_BUTTON) for i in range(n)]
    publish_all(broker.host, broker.port, [(e.topic("standby"), e.to_json()) for e in events])


def leader(database_url: str) -> str | None:
    found = scalar(database_url, LEADER)
    return str(found) if found else None


def assert_each_reminder_once(database_url: str) -> None:
    rows = psycopg_rows(database_url, REMINDERS)
    counts = Counter((alarm, repeat) for alarm, repeat in rows)
    doubled = {k: n for k, n in counts.items() if n > 1}
    assert not doubled, f"a deadline fired twice: {doubled}"
    by_alarm: dict[str, set[int]] = {}
    for alarm, repeat in rows:
        by_alarm.setdefault(alarm, set()).add(int(repeat))
    for alarm, repeats in by_alarm.items():
        assert repeats == set(range(1, max(repeats) + 1)), f"{alarm}: {sorted(repeats)}"


def start_owner_and_standby(services: Services, *, lease_s: int) -> subprocess.Popen[bytes]:
    """Ingest, then engine a (the owner of the deadlines) and engine b (standing by), with
    reminders every 2 s and the lease `lease_s`; returns a."""
    services.extra_env = {
        "LARM_UNANSWERED_ALERT_S": "2",
        "LARM_ENGINE_LEASE_S": str(lease_s),
        "LARM_SERVICE_HEARTBEAT_S": "0.5",
    }
    services.ingest()
    services.wait_ingest_connected()
    first = services.start("engine", LARM_ENGINE_INSTANCE="a")
    wait_until(lambda: leader(services.database_url) == "a", timeout=20, what="a leads")
    services.start("engine", LARM_ENGINE_INSTANCE="b")
    wait_until(
        lambda: (
            scalar(
                services.database_url,
                "SELECT count(*) FROM service_heartbeats"
                " WHERE service = 'engine' AND seen_at > now() - interval '3 s'",
            )
            == 2
        ),
        timeout=20,
        what="b stands by",
    )
    return first


@pytest.mark.timeout(120)
def test_a_hung_owner_is_replaced_and_fires_nothing_when_it_wakes(
    services: Services, broker: Broker, database_url: str
) -> None:
    first = start_owner_and_standby(services, lease_s=3)
    press(broker, 5, "before")
    wait_until(
        lambda: scalar(database_url, "SELECT min(unanswered_alerts) FROM alarms") == 1,
        timeout=15,
        what="a fires the first reminders",
    )
    first.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    press(broker, 5, "during")  # due while the owner hangs
    wait_until(lambda: leader(database_url) == "b", timeout=20, what="b takes over")
    took_over = time.monotonic() - stopped
    wait_until(lambda: scalar(database_url, "SELECT count(*) FROM alarms") == 10, timeout=10)
    wait_until(
        lambda: scalar(database_url, "SELECT min(unanswered_alerts) FROM alarms") >= 1,
        timeout=15,
        what="b fires what fell due",
    )
    time.sleep(3)  # more reminders fall due: b fires them, a is still stopped
    first.send_signal(signal.SIGCONT)
    time.sleep(4)  # a wakes with its working connection and its last epoch
    assert leader(database_url) == "b"
    # a lives on (it died here once: the server had ended its session in a transaction) and
    # says that it follows
    wait_until(
        lambda: scalar(database_url, SAYS_LEADER, ("a",)) is False, timeout=10, what="a follows"
    )
    assert first.poll() is None, "a died"
    wait_until(lambda: scalar(database_url, OVERDUE) == 0, timeout=5, what="nothing overdue")
    assert_each_reminder_once(database_url)
    print(f"\nthe standby took over {took_over:.1f} s after the owner hung (lease 3 s)")
    assert took_over < 3 + 5


@pytest.mark.timeout(120)
def test_a_killed_owner_is_replaced_at_once(
    services: Services, broker: Broker, database_url: str
) -> None:
    first = start_owner_and_standby(services, lease_s=10)
    press(broker, 5, "k")
    first.send_signal(signal.SIGKILL)
    first.wait(5)
    killed = time.monotonic()
    wait_until(lambda: leader(database_url) == "b", timeout=10, what="b takes over")
    took_over = time.monotonic() - killed
    wait_until(
        lambda: scalar(database_url, "SELECT min(unanswered_alerts) FROM alarms") >= 1,
        timeout=15,
        what="b fires what fell due",
    )
    wait_until(lambda: scalar(database_url, OVERDUE) == 0, timeout=5, what="nothing overdue")
    assert_each_reminder_once(database_url)
    print(f"\nthe standby took over {took_over:.1f} s after the owner was killed")
    assert took_over < 5  # the lock went with the session: no lease to wait out
