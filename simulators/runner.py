"""`larmkedja simulate`: run a scenario against a running stack (MQTT + API), with a progress
line. Devices publish through MQTT at QoS 1; staff act through the API."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import httpx

from api import create_token
from larmkedja.settings import Settings
from simulators.devices_paho import DevicePublisher
from simulators.fleet import Fleet
from simulators.scenario import Scenario
from simulators.staff import StaffSimulator

log = logging.getLogger(__name__)


def run_simulation(
    *,
    settings: Settings,
    scenario: Scenario,
    api_url: str,
    stop: threading.Event,
    progress_every_s: float = 5.0,
) -> Counter[str]:
    """Run until `stop` is set or the scenario's duration has passed; returns kinds sent."""
    start = datetime.now(UTC)
    fleet = Fleet(scenario, start=start)
    publisher = DevicePublisher(settings=settings, fleet=fleet)
    staff = _staff(settings, scenario, api_url, fleet)
    sent: Counter[str] = Counter()
    began = time.monotonic()
    last_progress = began
    try:
        while not stop.is_set():
            sim_s = (time.monotonic() - began) * scenario.speed
            if scenario.duration_s and sim_s > scenario.duration_s:
                break
            for emit in fleet.due(sim_s):
                publisher.publish(emit)
                sent[emit.event.kind.value] += 1
            if staff is not None:
                staff.tick()
            if time.monotonic() - last_progress >= progress_every_s:
                last_progress = time.monotonic()
                _progress(sim_s, sent, staff)
            stop.wait(0.05)
        publisher.flush()
    finally:
        publisher.close()
        if staff is not None:
            staff.close()
    _progress((time.monotonic() - began) * scenario.speed, sent, staff, end="\n")
    return sent


def _staff(
    settings: Settings, scenario: Scenario, api_url: str, fleet: Fleet
) -> StaffSimulator | None:
    if scenario.staff is None and scenario.night is None:
        return None
    _wait_for_api(api_url)

    def headers(role: str) -> dict[str, str]:
        token = create_token(settings, role=role, name=f"simulator-{role}", days=30)
        return {"Authorization": f"Bearer {token}"}

    if scenario.night is not None:
        supervisor = headers("supervisor")
        for plan_id, checks in fleet.plan_checks().items():
            device = next(c for c in fleet.checks if c.plan_id == plan_id)
            response = httpx.put(
                f"{api_url}/api/v1/supervision/plans/{plan_id}",
                headers=supervisor,
                json={
                    "device_id": device.device_id,
                    "site": device.site,
                    "checks": checks,
                    "window_minutes": scenario.night.window_minutes,
                    "timezone": scenario.night.timezone,
                },
                timeout=10,
            )
            response.raise_for_status()
    if scenario.staff is None:
        return None
    return StaffSimulator(
        api_url=api_url,
        operator_headers=headers("operator"),
        patrol_headers=headers("patrol"),
        staff=scenario.staff,
        seed=scenario.seed,
        speed=scenario.speed,
    )


def _wait_for_api(api_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{api_url}/healthz", timeout=2).is_success:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API at {api_url} did not answer within {timeout:.0f} s")
        time.sleep(0.5)


def _progress(
    sim_s: float, sent: Counter[str], staff: StaffSimulator | None, end: str = "\r"
) -> None:
    alarms = sum(
        n for kind, n in sent.items() if kind.startswith("alarm.") and kind != "alarm.cancel"
    )
    line = (
        f"sim {int(sim_s) // 3600:02d}:{int(sim_s) % 3600 // 60:02d}:{int(sim_s) % 60:02d}"
        f" | events {sum(sent.values()):,} | presses {alarms}"
        f" | checks {sent['check.result']} | cuts {sent['power.mains_lost']}"
    )
    if staff is not None:
        d = staff.done
        line += (
            f" | answered {d['answer']} resolved {d['resolve']} escalated {d['escalate']}"
            f" | patrol ack {d['ack']} arrived {d['arrive']} done {d['complete']}"
        )
    sys.stderr.write(line + end)
    sys.stderr.flush()
