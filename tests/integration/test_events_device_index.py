"""A device's events by device: the index leaves heartbeats out (migration 0020), and the one
lookup by device, the battery readings of an outage, is still planned through it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alarms.devices.processor_psycopg import OUTAGE_READINGS

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 8, 1, tzinfo=UTC)
INSERT = """
INSERT INTO events (received_at, event_id, site, device_id, kind, device_ts, data)
VALUES (%s, %s, 'solna', %s, %s, %s, %s::jsonb)
"""


def test_heartbeats_stay_out_of_the_index_and_battery_readings_use_it(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i in range(200):
            at = NOW + timedelta(seconds=i)
            device = f"d-{i % 20}"
            conn.execute(INSERT, (at, uuid.uuid4(), device, "heartbeat", at, "{}"))
        for i in range(5):
            at = NOW + timedelta(minutes=i)
            data = f'{{"percent": {90 - i}}}'
            conn.execute(INSERT, (at, uuid.uuid4(), "d-1", "battery.report", at, data))
        definition = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'events_device_idx'"
        ).fetchone()
        assert definition is not None and "WHERE (kind <> 'heartbeat'::text)" in definition[0]
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN " + OUTAGE_READINGS, {"device_id": "d-1", "since": NOW}
        ).fetchall()
        assert any("events_device_idx" in line for (line,) in plan), plan
        beats = "SELECT * FROM events WHERE device_id = 'd-1' AND kind = 'heartbeat'"
        plan = conn.execute("EXPLAIN " + beats).fetchall()
        assert not any("events_device_idx" in line for (line,) in plan), plan  # not in it
        readings = conn.execute(OUTAGE_READINGS, {"device_id": "d-1", "since": NOW}).fetchall()
        assert [percent for _, percent in readings] == [90.0, 89.0, 88.0, 87.0, 86.0]
