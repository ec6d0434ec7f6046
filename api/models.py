"""Request and response bodies of the HTTP API (they are the OpenAPI schema)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Problem(BaseModel):
    error: str
    message: str


class AlarmOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    alarm_id: uuid.UUID
    device_id: str
    site: str
    kind: str
    priority: int = Field(description="1 most urgent … 5 least (docs/alarm-chain.md)")
    state: str = Field(description="raised, answered, escalated or resolved")
    raised_at: datetime = Field(description="when the system received the first event")
    answered_at: datetime | None
    waiting_s: float = Field(description="until now if unanswered, else the answer time")
    event_count: int = Field(description="presses folded into this alarm")
    source: str
    last_event_at: datetime
    reset_at_device: datetime | None = Field(description="alarm.cancel seen at the device")
    answered_by: str | None
    escalated_at: datetime | None
    resolved_at: datetime | None
    outcome: str | None
    details: dict[str, Any]
    escalation_id: uuid.UUID | None = None


class EscalateIn(BaseModel):
    reason: Text


class ResolveIn(BaseModel):
    outcome: Text


class AnswerTimeStatsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    count: int
    mean_s: float | None
    p50_s: float | None
    p90_s: float | None
    p95_s: float | None
    max_s: float | None
    within_60s_ratio: float | None
    within_180s_ratio: float | None
    target_mean_s: float
    mean_above_target: bool


class AnswerTimeBucket(AnswerTimeStatsOut):
    start: datetime


class AnswerTimeOut(AnswerTimeStatsOut):
    since: datetime
    until: datetime
    site: str | None
    buckets: list[AnswerTimeBucket] | None = None


class EscalationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    escalation_id: uuid.UUID
    site: str
    device_id: str
    alarm_id: uuid.UUID | None
    plan_id: str | None
    check_id: int | None
    reason: str
    state: str = Field(description="open, acknowledged, arrived, completed or cancelled")
    created_at: datetime
    created_by: str
    ack_deadline: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    arrived_at: datetime | None
    arrived_by: str | None
    completed_at: datetime | None
    completed_by: str | None
    outcome: str | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    cancel_reason: str | None
    unack_alerts: int
    overdue: bool = Field(description="open and past its acknowledgement deadline")
    person_ref: str | None = Field(
        default=None, description="the person's reference (e.g. key box); no name, no address"
    )


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    device_id: str
    site: str
    online: bool
    last_seen: datetime = Field(description="when the system last received any of its events")
    first_seen: datetime
    heartbeat_interval_s: float | None = Field(description="its own period; null: the default")
    offline_due_at: datetime
    offline_since: datetime | None
    on_mains: bool
    mains_lost_at: datetime | None
    link_ok: bool
    battery_percent: float | None
    battery_reported_at: datetime | None
    backup_hours_estimate: float | None = Field(
        description="hours left on battery: now if on battery, else if mains went now"
    )
    full_battery_hours: float | None
    discharge_pct_per_h: float | None
    rate_source: str | None = Field(description="observed, learned or spec")
    backup_spec_hours: float
    backup_below_spec: bool


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


class CheckOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    check_id: int
    plan_id: str
    night: date
    local_time: str
    site: str
    device_id: str
    scheduled_for: datetime
    window_end: datetime
    state: str = Field(description="pending, done_ok, not_seen, rechecked_ok, missed or escalated")
    result_at: datetime | None
    outcome: str | None
    operator: str | None = Field(description="who looked (no images are ever stored)")
    look_s: float | None = Field(description="for how long")
    recheck_due_at: datetime | None
    rechecked_at: datetime | None
    recheck_outcome: str | None
    late_result_at: datetime | None
    escalation_id: uuid.UUID | None


class PlanOut(PlanIn):
    plan_id: str
    created: bool = False
    checks_upcoming: list[CheckOut] = []


class NightReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    night: date
    site: str | None
    planned: int
    done_on_time: int
    rechecked_ok: int
    rechecks: int
    missed: int
    escalated_checks: int
    open: int
    paused_plans: int
    escalations: int
    escalations_completed: int
    arrival_count: int
    arrival_p50_s: float | None
    arrival_p90_s: float | None
    arrival_max_s: float | None


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
