"""A fleet scenario (YAML): how many devices where, how they behave, what happens when."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field

Probability = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(ge=0)]
SiteName = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,32}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Delay(_Model):
    """A log-normal delay: half are shorter than `median_s`; `sigma` spreads them."""

    median_s: Annotated[float, Field(gt=0)]
    sigma: Annotated[float, Field(ge=0, le=3)] = 0.5

    def sample(self, rng: random.Random) -> float:
        return self.median_s * math.exp(rng.gauss(0, self.sigma))


class PowerCut(_Model):
    site: SiteName
    at_s: Seconds
    duration_s: Annotated[float, Field(gt=0)]
    share: Probability = 1.0  # of the site's devices
    drain_pct_per_h: Annotated[float, Field(gt=0)] = 2.0
    report_every_s: Annotated[float, Field(gt=0)] = 600


class CameraOutage(_Model):
    at_s: Seconds
    duration_s: Annotated[float, Field(gt=0)]
    cameras: Annotated[int, Field(ge=1)] = 1


class Night(_Model):
    """Night checks, either at local times (`checks`) or at offsets from the start."""

    checks: list[str] = []
    checks_from_start_s: list[Seconds] = []
    window_minutes: Annotated[float, Field(gt=0)] = 15
    timezone: str = "Europe/Stockholm"
    not_seen_p: Probability = 0.1
    missed_p: Probability = 0.05
    needs_help_p: Probability = 0.01
    recheck_ok_p: Probability = 0.7
    recheck_after_s: Annotated[float, Field(gt=0)] = 900
    look_s: Delay = Delay(median_s=25, sigma=0.2)


class Staff(_Model):
    operators: Annotated[int, Field(ge=1)] = 2
    answer_delay: Delay = Delay(median_s=20, sigma=0.6)
    resolve_delay: Delay = Delay(median_s=90, sigma=0.5)
    escalate_p: Probability = 0.05
    patrols: Annotated[int, Field(ge=1)] = 1
    ack_delay: Delay = Delay(median_s=60, sigma=0.6)
    arrive_delay: Delay = Delay(median_s=900, sigma=0.4)
    complete_delay: Delay = Delay(median_s=600, sigma=0.4)


class Scenario(_Model):
    seed: int = 7
    sites: Annotated[list[SiteName], Field(min_length=1)] = ["demo"]
    alarms: Annotated[int, Field(ge=0)] = 40
    cameras: Annotated[int, Field(ge=0)] = 8
    heartbeat_s: tuple[float, float] = (60.0, 90.0)
    jitter_s: Seconds = 2.0
    alarm_rate_per_device_day: Annotated[float, Field(ge=0)] = 1.0
    fall_share: Probability = 0.2
    repeat_press_p: Probability = 0.3
    cancel_p: Probability = 0.2
    battery_report_s: Annotated[float, Field(gt=0)] = 3600
    duration_s: Seconds = 0  # 0: until stopped
    speed: Annotated[float, Field(gt=0)] = 1.0  # simulated seconds per wall-clock second
    power_cuts: list[PowerCut] = []
    camera_outages: list[CameraOutage] = []
    night: Night | None = None
    staff: Staff | None = None

    @classmethod
    def load(cls, path: Path) -> Scenario:
        return cls.model_validate(yaml.safe_load(path.read_text()) or {})


DEFAULT = Path(__file__).with_name("scenarios") / "demo.yaml"
