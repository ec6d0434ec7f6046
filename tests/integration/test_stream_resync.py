"""The stream after its listener lost the database (a failover, a restart of PostgreSQL).

A change made while the listener is away is never notified to it; every connected client is
told `resync` and gets the queue as it is now, that change in it. Clients that see the same
entities share one snapshot: the listener reads no notification while it resyncs, so a
snapshot for every console, one after another, would hold the next alarm that long.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import psycopg
import pytest

from api import stream
from api.auth import Principal
from tests.conftest import Broker
from tests.helpers import running_api, settings_for, token, wait_until
from tests.integration.test_alarm_chain import next_message, ws_connect

pytestmark = pytest.mark.integration

END_LISTENER = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND query LIKE 'LISTEN %%'
"""
RAISE_OFFLINE = """
INSERT INTO alarms (site, device_id, kind, priority, source, raised_at, last_event_at,
                    unanswered_due_at)
VALUES ('solna', 'off-1', 'device.offline', 4, 'system', now(), now(), now() + interval '1 hour')
"""


def test_after_the_listener_lost_the_database_clients_resync_to_the_queue_as_it_is(
    database_url: str, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshots: list[str] = []
    real_snapshot = stream.snapshot

    async def counted(pool: Any, principal: Principal) -> list[bytes]:
        snapshots.append(principal.role.value)
        return await real_snapshot(pool, principal)

    monkeypatch.setattr(stream, "snapshot", counted)
    settings = settings_for(database_url, broker.host, broker.port)
    with running_api(settings) as url:
        headers = token(settings, "operator")
        with ExitStack() as stack:
            consoles = [stack.enter_context(ws_connect(url, headers)) for _ in range(3)]
            for ws in consoles:
                assert next_message(ws, "snapshot.alarms", 5)["alarms"] == []
            snapshots.clear()
            with psycopg.connect(database_url, autocommit=True) as conn:
                wait_until(
                    lambda: conn.execute(END_LISTENER).fetchall() != [],
                    timeout=5,
                    what="the stream's listener ended",
                )
                conn.execute(RAISE_OFFLINE)  # while it is away: no notification reaches it
            for ws in consoles:
                next_message(ws, "resync", 15)
                queue = next_message(ws, "snapshot.alarms", 5)["alarms"]
                assert [a["device_id"] for a in queue] == ["off-1"]
    assert snapshots == ["operator"]  # one snapshot for the three consoles
