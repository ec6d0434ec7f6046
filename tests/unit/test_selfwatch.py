"""When is the system silent?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alarms.selfwatch.silence import IngestBeat, silence_reasons

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def beat(**kw: object) -> IngestBeat:
    values: dict[str, object] = {
        "instance": "1",
        "seen_at": NOW - timedelta(seconds=1),
        "mqtt_connected": True,
        "disconnected_since": None,
        "last_commit_at": NOW - timedelta(seconds=1),
        "oldest_pending_at": None,
    }
    values.update(kw)
    return IngestBeat(**values)  # type: ignore[arg-type]


def reasons(
    beats: list[IngestBeat], last_event_s: float | None = 5, devices: bool = True
) -> list[str]:
    return silence_reasons(
        now=NOW,
        beats=beats,
        devices_registered=devices,
        last_event_at=None if last_event_s is None else NOW - timedelta(seconds=last_event_s),
        silence_s=300,
        stale_s=10,
        commit_stall_s=30,
    )


def test_a_working_system_is_not_silent() -> None:
    assert reasons([beat()]) == []


def test_no_ingest_alive() -> None:
    assert reasons([beat(seen_at=NOW - timedelta(seconds=60))]) == ["no ingest process is alive"]
    assert reasons([]) == ["no ingest process is alive"]


def test_disconnected_for_a_while_but_not_just_starting() -> None:
    starting = beat(mqtt_connected=False, disconnected_since=NOW - timedelta(seconds=2))
    assert reasons([starting]) == []
    gone = beat(mqtt_connected=False, disconnected_since=NOW - timedelta(seconds=30))
    assert reasons([gone]) == ["no ingest process is connected to the broker"]


def test_events_held_without_commit() -> None:
    stuck = beat(oldest_pending_at=NOW - timedelta(seconds=45))
    assert len(reasons([stuck])) == 1
    assert reasons([beat(oldest_pending_at=NOW - timedelta(seconds=3))]) == []


def test_no_events_from_known_devices_but_a_new_system_is_not_silent() -> None:
    assert reasons([beat()], last_event_s=301) == ["no device event for more than 300 s"]
    assert reasons([beat()], last_event_s=None) == ["no device event for more than 300 s"]
    assert reasons([beat()], last_event_s=None, devices=False) == []


def test_one_of_two_ingest_instances_down_is_noticed() -> None:
    down = beat(instance="2", seen_at=NOW - timedelta(seconds=30))
    found = reasons([beat(), down])
    assert found == ["ingest instance 2 is down; its share of the events waits in the broker"]
