"""The simulated fleet, pure: which device sends which contract event when.

Deterministic for a seed. Time is simulated seconds since the start (`at_s`); the runner maps it
to the wall clock. Heartbeats every 60 to 90 s with jitter, alarms as a Poisson process with
repeated presses and cancels, battery reports, area power cuts that drain batteries, cameras
that go offline, and night-check results that follow the plans (some not seen, some missed).
"""

from __future__ import annotations

import enum
import hashlib
import heapq
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from larmkedja.events import DeviceEvent, Kind
from simulators.scenario import Scenario


class Act(enum.Enum):
    BEAT = "beat"
    PRESS = "press"
    REPEAT = "repeat"
    CANCEL = "cancel"
    BATTERY = "battery"
    CUT_START = "cut_start"
    CUT_REPORT = "cut_report"
    CUT_END = "cut_end"
    CAMERA_DOWN = "camera_down"
    CAMERA_UP = "camera_up"
    CHECK = "check"
    RECHECK = "recheck"


@dataclass(slots=True)
class Device:
    device_id: str
    site: str
    camera: bool
    period_s: float
    battery: float = 100.0
    on_mains: bool = True
    down: bool = False
    cut: int | None = None  # index of the power cut it is in


@dataclass(frozen=True, slots=True)
class Emit:
    at_s: float
    site: str
    event: DeviceEvent


@dataclass(frozen=True, slots=True)
class PlannedCheck:
    plan_id: str
    device_id: str
    site: str
    at_s: float  # simulated seconds from the start


@dataclass(order=True)
class _Due:
    at_s: float
    seq: int
    act: Act = field(compare=False)
    device: int = field(compare=False, default=-1)
    extra: Any = field(compare=False, default=None)


class Fleet:
    def __init__(self, scenario: Scenario, *, start: datetime) -> None:
        self.scenario = scenario
        self.start = start
        self._rng = random.Random(scenario.seed)
        # Event ids follow the seed within a run but differ between runs (another start):
        # the same seed run again must not replay ids that ingest already stored as duplicates.
        self._id_salt = int.from_bytes(hashlib.sha256(start.isoformat().encode()).digest()[:16])
        self._heap: list[_Due] = []
        self._seq = 0
        self.devices = self._make_devices()
        self.checks: list[PlannedCheck] = []
        self._schedule_all()

    # --- set-up -------------------------------------------------------------------------

    def _make_devices(self) -> list[Device]:
        s, rng = self.scenario, self._rng
        low, high = s.heartbeat_s

        def make(count: int, tag: str, camera: bool) -> list[Device]:
            width = 4 if camera else 6
            sites = [s.sites[i % len(s.sites)] for i in range(count)]
            return [
                Device(
                    f"{site}-{tag}{i:0{width}d}",
                    site,
                    camera,
                    rng.uniform(low, high),
                )
                for i, site in enumerate(sites)
            ]

        return make(s.alarms, "a", False) + make(s.cameras, "c", True)

    def _at(self, at_s: float, act: Act, device: int = -1, extra: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, _Due(at_s, self._seq, act, device, extra))

    def _schedule_all(self) -> None:
        s, rng = self.scenario, self._rng
        for i, d in enumerate(self.devices):
            self._at(rng.uniform(0, d.period_s), Act.BEAT, i)
            self._at(rng.uniform(0, s.battery_report_s), Act.BATTERY, i)
        self._next_press(0.0)
        for n, cut in enumerate(s.power_cuts):
            self._at(cut.at_s, Act.CUT_START, extra=n)
        cameras = [i for i, d in enumerate(self.devices) if d.camera]
        for outage in s.camera_outages:
            for i in cameras[: outage.cameras]:
                self._at(outage.at_s, Act.CAMERA_DOWN, i)
                self._at(outage.at_s + outage.duration_s, Act.CAMERA_UP, i)
        if s.night is not None:
            for i in cameras:
                for at_s in self._check_times():
                    check = PlannedCheck(
                        f"plan-{self.devices[i].device_id}",
                        self.devices[i].device_id,
                        self.devices[i].site,
                        at_s,
                    )
                    self.checks.append(check)
                    self._at(at_s, Act.CHECK, i, check)

    def _check_times(self) -> list[float]:
        night = self.scenario.night
        assert night is not None  # noqa: S101 - only called with a night
        times = list(night.checks_from_start_s)
        tz = ZoneInfo(night.timezone)
        local_start = self.start.astimezone(tz)
        for text in night.checks:
            hh, mm = (int(x) for x in text.split(":")[:2])
            at = local_start.replace(hour=hh, minute=mm, second=0, microsecond=0)
            if at <= local_start:
                at += timedelta(days=1)
            times.append((at - local_start).total_seconds())
        return sorted(times)

    def plan_checks(self) -> dict[str, list[str]]:
        """Each plan's local check times (HH:MM:SS), for `PUT /supervision/plans/{id}`."""
        night = self.scenario.night
        if night is None:
            return {}
        tz = ZoneInfo(night.timezone)
        plans: dict[str, list[str]] = {}
        for check in self.checks:
            local = (self.start + timedelta(seconds=check.at_s)).astimezone(tz)
            plans.setdefault(check.plan_id, []).append(local.strftime("%H:%M:%S"))
        return plans

    def _next_press(self, now_s: float) -> None:
        s = self.scenario
        rate = s.alarms * s.alarm_rate_per_device_day / 86_400
        if rate > 0 and s.alarms:
            self._at(now_s + self._rng.expovariate(rate), Act.PRESS)

    # --- running ------------------------------------------------------------------------

    def due(self, until_s: float) -> list[Emit]:
        """Everything that happens up to `until_s`, in order."""
        out: list[Emit] = []
        while self._heap and self._heap[0].at_s <= until_s:
            item = heapq.heappop(self._heap)
            out.extend(self._apply(item))
        return out

    def _event(
        self, at_s: float, d: Device, kind: Kind, data: dict[str, Any] | None = None
    ) -> Emit:
        event = DeviceEvent(
            v=1,
            event_id=uuid.UUID(int=self._rng.getrandbits(128) ^ self._id_salt, version=4),
            device_id=d.device_id,
            ts=self.start + timedelta(seconds=at_s),
            kind=kind,
            data=data or {},
        )
        return Emit(at_s, d.site, event)

    def _apply(self, item: _Due) -> list[Emit]:
        handler = {
            Act.BEAT: self._beat,
            Act.PRESS: self._press,
            Act.REPEAT: self._repeat,
            Act.CANCEL: self._cancel,
            Act.BATTERY: self._battery,
            Act.CUT_START: self._cut_start,
            Act.CUT_REPORT: self._cut_report,
            Act.CUT_END: self._cut_end,
            Act.CAMERA_DOWN: self._camera_down,
            Act.CAMERA_UP: self._camera_up,
            Act.CHECK: self._check,
            Act.RECHECK: self._recheck,
        }[item.act]
        return handler(item)

    def _beat(self, item: _Due) -> list[Emit]:
        d = self.devices[item.device]
        jitter = self._rng.uniform(-self.scenario.jitter_s, self.scenario.jitter_s)
        self._at(item.at_s + max(1.0, d.period_s + jitter), Act.BEAT, item.device)
        if d.down:
            return []
        return [self._event(item.at_s, d, Kind.HEARTBEAT, {"interval_s": round(d.period_s)})]

    def _press(self, item: _Due) -> list[Emit]:
        self._next_press(item.at_s)
        rng, s = self._rng, self.scenario
        index = rng.randrange(s.alarms)
        kind = Kind.ALARM_FALL if rng.random() < s.fall_share else Kind.ALARM_BUTTON
        if rng.random() < s.repeat_press_p:
            self._at(item.at_s + rng.expovariate(1 / 15), Act.REPEAT, index, kind)
        if rng.random() < s.cancel_p:
            self._at(item.at_s + rng.uniform(20, 120), Act.CANCEL, index, kind)
        return [self._event(item.at_s, self.devices[index], kind, {"component": "wrist"})]

    def _repeat(self, item: _Due) -> list[Emit]:
        return [self._event(item.at_s, self.devices[item.device], item.extra)]

    def _cancel(self, item: _Due) -> list[Emit]:
        data = {"alarm_kind": item.extra.value}
        return [self._event(item.at_s, self.devices[item.device], Kind.ALARM_CANCEL, data)]

    def _battery(self, item: _Due) -> list[Emit]:
        d = self.devices[item.device]
        self._at(item.at_s + self.scenario.battery_report_s, Act.BATTERY, item.device)
        if d.down or not d.on_mains:
            return []  # a device on battery reports on the outage's own schedule
        d.battery = min(100.0, d.battery + 5)
        return [self._battery_report(item.at_s, d)]

    def _battery_report(self, at_s: float, d: Device) -> Emit:
        data = {"percent": round(d.battery, 1), "on_mains": d.on_mains}
        return self._event(at_s, d, Kind.BATTERY_REPORT, data)

    def _cut_start(self, item: _Due) -> list[Emit]:
        cut = self.scenario.power_cuts[item.extra]
        out = []
        for i, d in enumerate(self.devices):
            if d.site == cut.site and d.on_mains and self._rng.random() < cut.share:
                d.on_mains, d.cut = False, item.extra
                out.append(self._event(item.at_s, d, Kind.POWER_MAINS_LOST))
                self._at(item.at_s + cut.report_every_s, Act.CUT_REPORT, i, item.at_s)
        self._at(item.at_s + cut.duration_s, Act.CUT_END, extra=item.extra)
        return out

    def _cut_report(self, item: _Due) -> list[Emit]:
        d = self.devices[item.device]
        if d.on_mains or d.cut is None:
            return []
        cut = self.scenario.power_cuts[d.cut]
        d.battery = max(0.0, d.battery - cut.drain_pct_per_h * cut.report_every_s / 3600)
        self._at(item.at_s + cut.report_every_s, Act.CUT_REPORT, item.device)
        if d.battery <= 0:
            d.down = True  # empty: silent from now on
            return []
        return [self._battery_report(item.at_s, d)]

    def _cut_end(self, item: _Due) -> list[Emit]:
        out = []
        for d in self.devices:
            if d.cut == item.extra:
                d.on_mains, d.cut, d.down = True, None, False
                out.append(self._event(item.at_s, d, Kind.POWER_MAINS_RESTORED))
        return out

    def _camera_down(self, item: _Due) -> list[Emit]:
        self.devices[item.device].down = True
        return []

    def _camera_up(self, item: _Due) -> list[Emit]:
        self.devices[item.device].down = False
        return [self._event(item.at_s, self.devices[item.device], Kind.HEARTBEAT)]

    def _result(self, at_s: float, check: PlannedCheck, outcome: str) -> Emit:
        night = self.scenario.night
        assert night is not None  # noqa: S101 - checks exist only with a night
        data = {
            "plan_id": check.plan_id,
            "scheduled_for": (self.start + timedelta(seconds=check.at_s)).isoformat(),
            "outcome": outcome,
            "operator": f"sim-op-{self._rng.randint(1, 3)}",
            "duration_s": round(night.look_s.sample(self._rng), 1),
        }
        return self._event(
            at_s, self.devices[self._index(check.device_id)], Kind.CHECK_RESULT, data
        )

    def _index(self, device_id: str) -> int:
        return next(i for i, d in enumerate(self.devices) if d.device_id == device_id)

    def _check(self, item: _Due) -> list[Emit]:
        night, rng = self.scenario.night, self._rng
        assert night is not None  # noqa: S101 - checks exist only with a night
        if self.devices[item.device].down or rng.random() < night.missed_p:
            return []  # missed: nobody looked (or could)
        roll = rng.random()
        if roll < night.needs_help_p:
            return [self._result(item.at_s + 5, item.extra, "needs_help")]
        if roll < night.needs_help_p + night.not_seen_p:
            self._at(item.at_s + night.recheck_after_s, Act.RECHECK, item.device, item.extra)
            return [self._result(item.at_s + 5, item.extra, "not_seen")]
        return [self._result(item.at_s + 5, item.extra, "seen_ok")]

    def _recheck(self, item: _Due) -> list[Emit]:
        night = self.scenario.night
        assert night is not None  # noqa: S101 - checks exist only with a night
        if self.devices[item.device].down:
            return []
        outcome = "seen_ok" if self._rng.random() < night.recheck_ok_p else "not_seen"
        return [self._result(item.at_s, item.extra, outcome)]
