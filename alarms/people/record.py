"""The person behind a device, pure: the record as the API shows it (contract §6), and when a
hand-over note must be acknowledged. No I/O; the time is a parameter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

AccessKind = Literal["key_safe", "digital_lock", "patrol_key"]
AreaType = Literal["town", "rural"]
# A night (as night supervision names them) ends at noon: a note is shown until then.
NIGHT_ENDS = time(12, 0)


class Access(BaseModel):
    """One way into the home: a key safe (its code is not stored here: `ref` names the safe), a
    digital lock (its id), or a key the patrol holds (its key id); `where` it is."""

    model_config = ConfigDict(frozen=True)

    kind: AccessKind
    ref: str | None = None
    where: str | None = None


class Contact(BaseModel):
    """Next of kin or a responder, in call order; `call_window` like "08:00-21:00" (local
    time, may wrap midnight) or null (any time)."""

    model_config = ConfigDict(frozen=True)

    name: str
    relation: str | None = None
    phone: str
    call_window: str | None = None


class HomeCare(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider: str | None = Field(default=None, description="the home-care provider responsible")
    team: str | None = Field(default=None, description="the team responsible")


class Absence(BaseModel):
    """A person away in [from, until): no offline alerts and no night checks."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    absence_id: str
    from_: datetime = Field(alias="from")
    until: datetime
    reason: str | None = None


class PersonRecord(BaseModel):
    """A person's record (`GET /api/v1/persons/{person_id}`); every read of it is audited."""

    model_config = ConfigDict(frozen=True)

    person_id: str = Field(description="the person's pseudonymous reference (also `person_ref`)")
    person_ref: str
    site: str | None
    name: str
    address: str
    area_type: AreaType = Field(description="the arrival promise of the area: town or rural")
    language: str
    phone: str | None = Field(description="the person's own number")
    notes: str | None = Field(description="medical and other notes for whoever answers")
    access_notes: str | None = Field(description="door, pets, what else the patrol must know")
    home_care: HomeCare | None
    access: list[Access] = Field(description="the ways in; empty: no access recorded")
    contacts: list[Contact] = Field(description="in call order")
    devices: list[str]
    plans: list[str] = Field(description="the night-supervision plans")
    device_id: str | None = Field(description="the first of `devices` (before contract v1.1)")
    plan_id: str | None = Field(description="the first of `plans` (before contract v1.1)")
    absences: list[Absence]
    updated_at: datetime
    updated_by: str


# The fields of the `person_record` type, in this order (migration 0012).
RECORD_COLUMNS = (
    "person_ref",
    "site",
    "name",
    "address",
    "area_type",
    "language",
    "phone",
    "notes",
    "access_notes",
    "home_care_provider",
    "home_care_team",
    "access",
    "contacts",
    "devices",
    "plans",
    "absences",
    "updated_at",
    "updated_by",
)


def record_of(row: Sequence[Any]) -> PersonRecord:
    """The record from a `person_record` row (RECORD_COLUMNS)."""
    v: Mapping[str, Any] = dict(zip(RECORD_COLUMNS, row, strict=True))
    provider, team = v["home_care_provider"], v["home_care_team"]
    devices, plans = list(v["devices"]), list(v["plans"])
    return PersonRecord(
        person_id=v["person_ref"],
        home_care=HomeCare(provider=provider, team=team) if provider or team else None,
        device_id=devices[0] if devices else None,
        plan_id=plans[0] if plans else None,
        **{
            k: v[k]
            for k in RECORD_COLUMNS
            if k not in {"home_care_provider", "home_care_team", "devices", "plans"}
        },
        devices=devices,
        plans=plans,
    )


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The one instant a local wall-clock time means on `day` (a time the clocks skip is read
    with the offset before the change; a time that occurs twice is its first occurrence)."""
    return datetime.combine(day, at).replace(tzinfo=tz, fold=0)


def note_due(created: datetime, *, ack_by: time, late_s: float, tz: ZoneInfo) -> datetime:
    """When a note left at `created` must be acknowledged: by `ack_by` (local, e.g. 22:30) the
    same evening if it was left before then, else (left during the night) `late_s` after it."""
    local = created.astimezone(tz)
    deadline = _local(local.date(), ack_by, tz)
    if local < deadline:
        return deadline
    return created + timedelta(seconds=late_s)


def note_shown_until(due: datetime, *, tz: ZoneInfo) -> datetime:
    """The end of the night a note due at `due` is for: the next local noon after it."""
    local = due.astimezone(tz)
    noon = _local(local.date(), NIGHT_ENDS, tz)
    if noon <= local:
        noon = _local(local.date() + timedelta(days=1), NIGHT_ENDS, tz)
    return noon
