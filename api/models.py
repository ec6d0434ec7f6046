"""Request and response bodies of the HTTP API (they are the OpenAPI schema)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from alarms.night.plans_psycopg import CheckView
from alarms.queue.answer_time import AnswerTimeStats

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Problem(BaseModel):
    error: str
    message: str


class EscalateIn(BaseModel):
    reason: Text = Field(
        description="What the patrol must know. It is published on MQTT to the patrol's "
        "system: never a door code, key code or lock code (the patrol has the key reference)."
    )


class ResolveIn(BaseModel):
    outcome: Text


class AnswerTimeBucket(AnswerTimeStats):
    start: datetime


class AnswerTimeOut(AnswerTimeStats):
    since: datetime
    until: datetime
    site: str | None
    buckets: list[AnswerTimeBucket] | None = None


class PlanIn(BaseModel):
    device_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    site: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")]
    checks: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^\d{2}:\d{2}(:\d{2})?$")]],
        Field(min_length=1, max_length=48),
    ] = Field(description='local wall-clock times, e.g. ["22:00", "01:30", "04:00"]')
    window_minutes: Annotated[float, Field(gt=0, le=180)] = 15.0
    timezone: str = "Europe/Stockholm"
    paused_nights: list[date] = Field(
        default_factory=list, description="nights (named by their evening's date) not checked"
    )


class PlanOut(PlanIn):
    plan_id: str
    created: bool = False
    checks_upcoming: list[CheckView] = []


class CompleteIn(BaseModel):
    outcome: Text


class CancelIn(BaseModel):
    reason: Text


class PersonIn(BaseModel):
    device_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
    plan_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,128}$")] | None = None
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    access_notes: Annotated[str, StringConstraints(max_length=1000)] | None = None


class PersonOut(PersonIn):
    model_config = ConfigDict(from_attributes=True)

    person_ref: str
    updated_at: datetime
    updated_by: str
