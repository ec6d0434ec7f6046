"""An area power cut is one incident even when ingest's two bulk writers store it together.

Each writer counts the area's devices on battery inside its own transaction, and under READ
COMMITTED it cannot see what the other has not committed: found by the suite on two workers,
where the 200-device power cut of test_devices.py gave 38 `device.on_battery` alerts (19 per
writer) instead of fewer than 20. Here the two transactions are held open on purpose."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import psycopg
import pytest

from alarms.devices.processor_psycopg import DeviceProcessor
from larmkedja.events import Kind, ReceivedEvent
from tests.helpers import make_event, scalar, settings_for

pytestmark = pytest.mark.integration

THRESHOLD = 20
DEVICES = [f"d-{i:02d}" for i in range(2 * (THRESHOLD - 1))]
NEW = "CREATE TEMP TABLE IF NOT EXISTS ingest_new (LIKE events) ON COMMIT DELETE ROWS"


def mains_lost(devices: list[str]) -> list[ReceivedEvent]:
    now = datetime.now(UTC)
    return [
        ReceivedEvent(site="ostra", event=make_event(d, Kind.POWER_MAINS_LOST), received_at=now)
        for d in devices
    ]


def test_two_writers_losing_mains_at_once_make_one_incident(database_url: str) -> None:
    s = settings_for(
        database_url, "127.0.0.1", 1883, power_cut_devices=THRESHOLD, power_cut_window_s=60
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at)"
            " SELECT d, 'ostra', now(), now(), now() + interval '1 hour'"
            " FROM unnest(%s::text[]) AS d",
            (DEVICES,),
        )
    processor = DeviceProcessor(settings=s)
    half = THRESHOLD - 1
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second:
        for conn in (first, second):
            conn.execute(NEW)
            conn.commit()
        with first.cursor() as cur:
            processor.process(cur, mains_lost(DEVICES[:half]))  # 19: no incident yet

        def other_writer() -> None:
            with second.cursor() as cur:
                processor.process(cur, mains_lost(DEVICES[half:]))
            second.commit()

        writer = threading.Thread(target=other_writer)
        writer.start()
        writer.join(timeout=1.0)  # it may finish now (the fault) or wait for the first
        first.commit()
        writer.join(timeout=10)
        assert not writer.is_alive()
    count = "SELECT count(*) FROM alerts WHERE kind = %s AND resolved_at IS NULL"
    assert scalar(database_url, count, ("site.power_cut",)) == 1
    assert scalar(database_url, count, ("device.on_battery",)) == half
