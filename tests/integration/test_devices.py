"""Device supervision on the real stack: liveness, mains, the 48-hour battery, power cuts,
and the system noticing its own silence."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from alarms.devices.processor_psycopg import DeviceProcessor
from alarms.devices.sweeps_psycopg import OfflineSweep
from ingest.store_psycopg import EventStore
from larmkedja.events import Kind, ReceivedEvent
from larmkedja.settings import Settings
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
ACTIVE_POWER_CUTS = (
    "SELECT count(*) FROM alerts WHERE kind = 'site.power_cut' AND resolved_at IS NULL"
)


@contextmanager
def stack(database_url: str, broker: Broker, **overrides: Any) -> Iterator[tuple[Settings, str]]:
    s = settings_for(database_url, broker.host, broker.port, **overrides)
    with running_ingest(s), running_engine(s), running_api(s) as url:
        yield s, url


def send(broker: Broker, site: str, *events: Any) -> None:
    publish_all(broker.host, broker.port, [(e.topic(site), e.to_json()) for e in events])


def alerts_of(sub: Subscriber, kind: str) -> list[dict[str, Any]]:
    """The alert messages of `kind` received so far."""
    return [m for m in map(json.loads, sub.payloads()) if m["kind"] == kind]


def test_a_silent_device_is_offline_within_misses_times_period_plus_1s_and_comes_back(
    database_url: str, broker: Broker
) -> None:
    alerts = Subscriber(broker.host, broker.port, "larm/v1/+/alerts")
    try:
        with stack(database_url, broker, heartbeat_misses=3) as (s, url):
            for _ in range(3):
                send(broker, "solna", make_event("d-hb", Kind.HEARTBEAT, {"interval_s": 0.2}))
                time.sleep(0.1)
            last_beat = time.monotonic()
            wait_until(lambda: bool(alerts_of(alerts, "device.offline")), timeout=5, what="offline")
            took = time.monotonic() - last_beat
            assert took <= 3 * 0.2 + 1.0, took
            op = token(s, "operator")
            device = httpx.get(f"{url}/api/v1/devices/d-hb", headers=op).json()
            assert device["online"] is False and device["offline_since"] is not None
            queue = httpx.get(f"{url}/api/v1/alarms", headers=op).json()
            assert [(a["kind"], a["priority"], a["device_id"]) for a in queue] == [
                ("device.offline", 4, "d-hb")
            ]
            offline = httpx.get(f"{url}/api/v1/devices?state=offline", headers=op).json()
            assert [d["device_id"] for d in offline] == ["d-hb"]

            send(broker, "solna", make_event("d-hb", Kind.HEARTBEAT, {"interval_s": 0.2}))
            wait_until(
                lambda: httpx.get(f"{url}/api/v1/devices/d-hb", headers=op).json()["online"],
                timeout=1,
                what="back online on its next heartbeat",
            )
            assert httpx.get(f"{url}/api/v1/alarms", headers=op).json() == []  # the system ended it
            wait_until(
                lambda: [a["state"] for a in alerts_of(alerts, "device.offline")][-1] == "resolved",
                timeout=2,
            )
    finally:
        alerts.close()
    states = [a["state"] for a in alerts_of(alerts, "device.offline")]
    assert states[:2] == ["active", "resolved"]  # a state change, not one message per beat


def test_a_48_hour_outage_in_seconds(database_url: str, broker: Broker) -> None:
    """Two devices lose mains; one battery drains at 1.5 %/h (66 h full), one at 2.5 %/h
    (40 h full: below the 48 h spec). Their reports span two days of device time."""
    alerts = Subscriber(broker.host, broker.port, "larm/v1/+/alerts")
    try:
        with stack(database_url, broker) as (s, url):
            op = token(s, "supervisor")
            start = datetime.now(UTC)

            def device(device_id: str) -> dict[str, Any]:
                return dict(httpx.get(f"{url}/api/v1/devices/{device_id}", headers=op).json())

            send(
                broker,
                "norr",
                make_event("d-good", Kind.BATTERY_REPORT, {"percent": 100, "on_mains": True}),
                make_event("d-weak", Kind.BATTERY_REPORT, {"percent": 100, "on_mains": True}),
            )
            wait_until(lambda: scalar(database_url, "SELECT count(*) FROM devices") == 2, timeout=2)
            before = device("d-good")
            assert before["rate_source"] == "spec" and before["backup_hours_estimate"] == 48
            send(
                broker,
                "norr",
                make_event("d-good", Kind.POWER_MAINS_LOST),
                make_event("d-weak", Kind.POWER_MAINS_LOST),
            )
            wait_until(lambda: len(alerts_of(alerts, "device.on_battery")) == 2, timeout=3)
            hours_left: list[float] = []
            for hour in range(0, 49, 4):
                ts = start + timedelta(hours=hour)
                reports = [
                    make_event("d-good", Kind.BATTERY_REPORT, {"percent": 100 - 1.5 * hour}, ts=ts)
                ]
                if hour < 40:  # the weak one is empty after 40 h: it reports no more
                    reports.append(
                        make_event(
                            "d-weak", Kind.BATTERY_REPORT, {"percent": 100 - 2.5 * hour}, ts=ts
                        )
                    )
                send(broker, "norr", *reports)
                expected = 100 - 1.5 * hour
                wait_until(
                    lambda: device("d-good")["battery_percent"] == expected,  # noqa: B023
                    timeout=2,
                )
                hours_left.append(device("d-good")["backup_hours_estimate"])
            good, weak = device("d-good"), device("d-weak")
    finally:
        alerts.close()
    assert good["on_mains"] is False and good["rate_source"] == "observed"
    assert good["full_battery_hours"] == pytest.approx(100 / 1.5, rel=1e-6)
    assert good["backup_hours_estimate"] == pytest.approx(28 / 1.5, rel=1e-6)
    assert good["backup_below_spec"] is False and good["backup_spec_hours"] == 48
    # From the second report on the rate is observed; then what is left only goes down.
    assert all(a >= b for a, b in itertools.pairwise(hours_left[1:]))
    assert weak["full_battery_hours"] == pytest.approx(40, rel=1e-6)
    assert weak["backup_below_spec"] is True
    below = alerts_of(alerts, "device.backup_below_spec")
    assert {a["subject"] for a in below} == {"d-weak"}


def test_an_area_power_cut_is_one_incident_not_200_queue_entries(
    database_url: str, broker: Broker
) -> None:
    with stack(database_url, broker, power_cut_devices=20, power_cut_window_s=60) as (s, url):
        devices = [f"d-{i:03d}" for i in range(200)]
        send(broker, "ostra", *(make_event(d, Kind.HEARTBEAT) for d in devices))
        send(broker, "ostra", *(make_event(d, Kind.POWER_MAINS_LOST) for d in devices))
        wait_until(
            lambda: scalar(database_url, "SELECT count(*) FROM devices WHERE NOT on_mains") == 200,
            timeout=5,
        )
        op = token(s, "operator")
        queue = httpx.get(f"{url}/api/v1/alarms", headers=op).json()
        assert [(a["kind"], a["site"]) for a in queue] == [("site.power_cut", "ostra")]
        assert queue[0]["event_count"] > 150  # the devices folded into the incident
        on_battery = httpx.get(
            f"{url}/api/v1/devices?state=on_battery&site=ostra", headers=op
        ).json()
        assert len(on_battery) == 200  # each device is still visible
        count = "SELECT count(*) FROM alerts WHERE kind = %s"
        assert scalar(database_url, count, ("site.power_cut",)) == 1
        assert scalar(database_url, count, ("device.on_battery",)) < 20

        send(broker, "ostra", *(make_event(d, Kind.POWER_MAINS_RESTORED) for d in devices[:190]))
        wait_until(
            lambda: scalar(database_url, ACTIVE_POWER_CUTS) == 0,
            timeout=5,
            what="the incident ends",
        )
        wait_until(lambda: httpx.get(f"{url}/api/v1/alarms", headers=op).json() == [], timeout=2)
        still = scalar(
            database_url,
            "SELECT count(*) FROM alerts WHERE kind = 'device.on_battery' AND resolved_at IS NULL",
        )
        assert still == 10  # the ten still on battery now have their own alerts


def test_faults_are_technical_alarms_and_a_restored_link_ends_its_alarm(
    database_url: str, broker: Broker
) -> None:
    with stack(database_url, broker) as (s, url):
        send(
            broker,
            "solna",
            make_event("d-t", Kind.TAMPER),
            make_event("d-l", Kind.LINK_LOST),
            make_event("d-b", Kind.BATTERY_LOW, {"percent": 9}),
        )
        op = token(s, "operator")
        wait_until(
            lambda: len(httpx.get(f"{url}/api/v1/alarms", headers=op).json()) == 2, timeout=2
        )
        kinds = {
            (a["kind"], a["priority"]) for a in httpx.get(f"{url}/api/v1/alarms", headers=op).json()
        }
        assert kinds == {("tamper", 4), ("link.lost", 4)}
        assert scalar(database_url, "SELECT count(*) FROM alerts WHERE kind = 'battery.low'") == 1
        send(broker, "solna", make_event("d-l", Kind.LINK_RESTORED))
        wait_until(
            lambda: (
                [a["kind"] for a in httpx.get(f"{url}/api/v1/alarms", headers=op).json()]
                == ["tamper"]
            ),
            timeout=2,
        )
        assert httpx.get(f"{url}/api/v1/devices/d-l", headers=op).json()["link_ok"] is True


def test_the_system_notices_its_own_silence(database_url: str, broker: Broker) -> None:
    with stack(database_url, broker, silence_s=2.0) as (_, url):
        send(broker, "solna", make_event("d-s", Kind.HEARTBEAT))
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, timeout=3, what="ready")
        active = "SELECT count(*) FROM alerts WHERE kind = 'system.silent' AND resolved_at IS NULL"
        wait_until(lambda: scalar(database_url, active) == 1, timeout=6, what="system.silent")
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["not_silent"] is False
        # A heartbeat ends the silence. It comes back 2 s later, so the test looks for the
        # resolved alert, not for a moment with none active (a busy machine can miss that).
        send(broker, "solna", make_event("d-s", Kind.HEARTBEAT))
        resolved = (
            "SELECT count(*) FROM alerts WHERE kind = 'system.silent' AND resolved_at IS NOT NULL"
        )
        wait_until(lambda: scalar(database_url, resolved) >= 1, timeout=4, what="resolved")
        send(broker, "solna", make_event("d-s", Kind.HEARTBEAT))
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, timeout=2, what="ready")


def test_the_offline_sweep_skips_a_device_whose_event_is_being_stored(
    database_url: str, broker: Broker
) -> None:
    """Ingest's liveness upsert locks devices in device_id order; a sweep that waited for such a
    row while holding others deadlocked with it (twice in a 30-minute soak). It now skips the row
    ingest holds, and takes it at the next sweep if it is still due."""
    sweep = OfflineSweep(settings=settings_for(database_url, broker.host, broker.port))
    assert_sweep_skips_a_held_row(
        database_url,
        sweep,
        due="INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at)"
        " SELECT d, 'solna', now() - interval '1 hour', now() - interval '1 hour',"
        " now() - interval '1 minute' FROM unnest(ARRAY['d-a', 'd-b', 'd-c']) AS d",
        hold="UPDATE devices SET last_seen = now() WHERE device_id = 'd-b'",
    )
    assert scalar(database_url, "SELECT count(*) FROM devices WHERE NOT online") == 3


def test_a_batch_with_several_events_of_a_device_keeps_the_latest(database_url: str) -> None:
    """One batch, one device, events out of order: it was last seen at its latest event (and at
    that event's site), its interval is that of the latest heartbeat that states one, and
    its offline deadline follows from both. A device whose heartbeats state none keeps the
    default."""
    base = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    s = settings_for(database_url, "127.0.0.1", 1883, heartbeat_default_s=50.0)

    def at(offset_s: int, site: str, device: str, kind: Kind, data: dict[str, Any]) -> Any:
        return ReceivedEvent(
            site=site,
            event=make_event(device, kind, data),
            received_at=base + timedelta(0, offset_s),
        )

    batch = [
        at(20, "solna", "d-a", Kind.HEARTBEAT, {"interval_s": 30}),
        at(40, "sundbyberg", "d-a", Kind.ALARM_BUTTON, {}),  # the latest: its site
        at(10, "solna", "d-a", Kind.HEARTBEAT, {"interval_s": 90}),  # older interval
        at(30, "solna", "d-a", Kind.HEARTBEAT, {}),  # states none
        at(5, "solna", "d-b", Kind.HEARTBEAT, {}),
    ]
    store = EventStore(conninfo=database_url, processors=[DeviceProcessor(settings=s)])
    try:
        store.write(batch, [])
    finally:
        store.close()
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT device_id, site, first_seen, last_seen, heartbeat_interval_s, offline_due_at"
            " FROM devices ORDER BY device_id"
        ).fetchall()
    misses = s.heartbeat_misses
    assert rows == [
        (
            "d-a",
            "sundbyberg",
            base + timedelta(0, 40),
            base + timedelta(0, 40),
            30.0,
            base + timedelta(0, 40 + 30 * misses),
        ),
        (
            "d-b",
            "solna",
            base + timedelta(0, 5),
            base + timedelta(0, 5),
            None,
            base + timedelta(0, 5 + 50 * misses),
        ),
    ]
