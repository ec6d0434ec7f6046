"""The simulated fleet: deterministic, per the contract, and behaving as the scenario says."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from ingest.parse import parse
from larmkedja.events import DeviceEvent, Kind, ReceivedEvent
from simulators.fleet import Fleet
from simulators.scenario import DEFAULT, CameraOutage, Night, PowerCut, Scenario

START = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def run(scenario: Scenario, seconds: float) -> list[tuple[float, str, DeviceEvent]]:
    fleet = Fleet(scenario, start=START)
    return [(e.at_s, e.site, e.event) for e in fleet.due(seconds)]


def test_the_same_seed_gives_the_same_events() -> None:
    scenario = Scenario(alarms=20, cameras=2, alarm_rate_per_device_day=200)
    first = [(t, s, e.model_dump()) for t, s, e in run(scenario, 600)]
    again = [(t, s, e.model_dump()) for t, s, e in run(scenario, 600)]
    assert first == again
    other = run(scenario.model_copy(update={"seed": 8}), 600)
    assert [e for _, _, e in other] != [e for _, _, e in run(scenario, 600)]


def test_a_second_run_of_the_same_seed_sends_new_event_ids() -> None:
    # Found running `make run` twice: the second fleet replayed the first one's ids, ingest
    # stored every event as a duplicate (none at all) and the system looked silent.
    scenario = Scenario(alarms=20, cameras=2, alarm_rate_per_device_day=200)
    first = {e.event.event_id for e in Fleet(scenario, start=START).due(600)}
    later = START.replace(hour=21)
    again = [e.event for e in Fleet(scenario, start=later).due(600)]
    assert len(again) == len(first) and not first & {e.event_id for e in again}


def test_every_event_passes_the_ingest_parser() -> None:
    scenario = Scenario.load(DEFAULT)
    for _, site, event in run(scenario, 3600):
        raw = event.to_json()
        result = parse(topic=event.topic(site), payload=raw, received_at=START)
        assert isinstance(result, ReceivedEvent), result


def test_heartbeats_every_60_to_90_s_with_jitter() -> None:
    scenario = Scenario(alarms=50, cameras=0, alarm_rate_per_device_day=0, jitter_s=2)
    beats: dict[str, list[float]] = defaultdict(list)
    for t, _, e in run(scenario, 1800):
        if e.kind is Kind.HEARTBEAT:
            beats[e.device_id].append(t)
    assert len(beats) == 50
    gaps = [b - a for times in beats.values() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 58 and max(gaps) <= 92


def test_alarms_arrive_at_the_set_rate() -> None:
    # 1,000 devices x 2 per day over a day: 2,000 expected presses (Poisson: sd ~ 45).
    scenario = Scenario(
        alarms=1000,
        cameras=0,
        alarm_rate_per_device_day=2,
        repeat_press_p=0,
        cancel_p=0,
        heartbeat_s=(3600, 3600),
        battery_report_s=86_400,
    )
    kinds = Counter(e.kind for _, _, e in run(scenario, 86_400))
    presses = kinds[Kind.ALARM_BUTTON] + kinds[Kind.ALARM_FALL]
    assert 1800 < presses < 2200
    assert 0.1 < kinds[Kind.ALARM_FALL] / presses < 0.3  # fall_share 0.2


def test_a_power_cut_drains_batteries_and_ends() -> None:
    scenario = Scenario(
        sites=["ost"],
        alarms=10,
        cameras=0,
        alarm_rate_per_device_day=0,
        power_cuts=[
            PowerCut(site="ost", at_s=100, duration_s=7200, drain_pct_per_h=3, report_every_s=600)
        ],
    )
    events = run(scenario, 8000)
    lost = [e for _, _, e in events if e.kind is Kind.POWER_MAINS_LOST]
    restored = [e for _, _, e in events if e.kind is Kind.POWER_MAINS_RESTORED]
    assert len(lost) == len(restored) == 10
    levels = [
        e.data["percent"]
        for _, _, e in events
        if e.kind is Kind.BATTERY_REPORT
        and e.data["on_mains"] is False
        and e.device_id == lost[0].device_id
    ]
    assert levels == sorted(levels, reverse=True) and len(levels) >= 10


def test_a_camera_offline_is_silent_and_night_checks_follow_the_plans() -> None:
    scenario = Scenario(
        alarms=0,
        cameras=4,
        alarm_rate_per_device_day=0,
        camera_outages=[CameraOutage(at_s=0, duration_s=3600, cameras=1)],
        night=Night(checks_from_start_s=[600, 1200], missed_p=0, not_seen_p=0, needs_help_p=0),
    )
    fleet = Fleet(scenario, start=START)
    events = fleet.due(3000)
    down = fleet.devices[0].device_id
    assert not [e for e in events if e.event.device_id == down and e.event.kind is Kind.HEARTBEAT]
    results = [e for e in events if e.event.kind is Kind.CHECK_RESULT]
    assert len(results) == 3 * 2  # the camera that is down cannot report its checks
    assert {r.event.data["outcome"] for r in results} == {"seen_ok"}
    plans = fleet.plan_checks()
    assert len(plans) == 4 and all(len(times) == 2 for times in plans.values())


def test_the_shipped_scenarios_load() -> None:
    for path in Path(DEFAULT).parent.glob("*.yaml"):
        Scenario.load(path)
