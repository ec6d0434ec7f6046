"""Request and response bodies of the person record, its absences, the hand-over notes and the
patrol's visit (contract §6; they are the OpenAPI schema, so every limit is said here)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from alarms.cases.rules import CaseStep
from alarms.patrol.escalations_psycopg import EscalationRow
from alarms.people.notes_psycopg import HandoverNote
from alarms.people.record import AccessKind, AreaType, PersonRecord
from api.models import TEXT_PATTERN, IsoDateTime

T = TypeVar("T")


def _text(max_length: int) -> object:
    return StringConstraints(min_length=1, max_length=max_length, pattern=TEXT_PATTERN)


def _unique(values: list[T]) -> list[T]:
    if len(set(values)) != len(values):
        raise ValueError("the items must be unique")
    return values


# A list whose items are all different (stated in the schema, checked on input).
UniqueList = Annotated[
    list[T], Field(json_schema_extra={"uniqueItems": True}), AfterValidator(_unique)
]
DeviceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
PlanId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]
Site = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()/-]{1,38}$")]
CallWindow = Annotated[
    str,
    StringConstraints(
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$",
    ),
]
AbsenceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class AccessIn(BaseModel):
    kind: AccessKind
    ref: Annotated[str, _text(100)] | None = Field(
        default=None,
        description="which key safe, lock or key (its id): never the code itself",
    )
    where: Annotated[str, _text(200)] | None = Field(default=None, description="where it is")


class ContactIn(BaseModel):
    name: Annotated[str, _text(200)]
    relation: Annotated[str, _text(100)] | None = None
    phone: Phone
    call_window: CallWindow | None = Field(
        default=None,
        description='when they may be called, local time, e.g. "08:00-21:00" (may wrap '
        "midnight); null: any time",
    )


class HomeCareIn(BaseModel):
    provider: Annotated[str, _text(200)] | None = None
    team: Annotated[str, _text(200)] | None = None


class PersonIn(BaseModel):
    """`PUT /api/v1/persons/{person_id}`: the whole record (it replaces the one stored)."""

    site: Site | None = Field(default=None, description="whose night patrol goes there")
    name: Annotated[str, _text(200)]
    address: Annotated[str, _text(300)]
    area_type: AreaType = "town"
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")] = "sv"
    phone: Phone | None = Field(default=None, description="the person's own number")
    notes: Annotated[str, _text(2000)] | None = Field(
        default=None, description="medical and other notes for whoever answers"
    )
    access_notes: Annotated[str, _text(1000)] | None = None
    home_care: HomeCareIn | None = Field(
        default=None, description="the home-care provider and team responsible"
    )
    devices: Annotated[UniqueList[DeviceId], Field(max_length=20)] = Field(
        default_factory=list, description="the person's devices (one person per device)"
    )
    device_id: DeviceId | None = Field(
        default=None, description="one device, as before contract v1.1 (added to `devices`)"
    )
    plans: Annotated[UniqueList[PlanId], Field(max_length=10)] = Field(
        default_factory=list, description="the person's night-supervision plans"
    )
    plan_id: PlanId | None = Field(
        default=None, description="one plan, as before contract v1.1 (added to `plans`)"
    )
    access: Annotated[list[AccessIn], Field(max_length=10)] = Field(
        default_factory=list, description="the ways in; none: the alarm is flagged"
    )
    contacts: Annotated[list[ContactIn], Field(max_length=20)] = Field(
        default_factory=list, description="in call order"
    )

    def stored(self) -> dict[str, object]:
        """What the database function takes: the lists merged, home care as two fields."""
        devices = [*self.devices, *([self.device_id] if self.device_id else [])]
        plans = [*self.plans, *([self.plan_id] if self.plan_id else [])]
        care = self.home_care or HomeCareIn()
        values = self.model_dump(exclude={"home_care", "device_id", "plan_id"})
        return {
            **values,
            "devices": list(dict.fromkeys(devices)),
            "plans": list(dict.fromkeys(plans)),
            "home_care_provider": care.provider,
            "home_care_team": care.team,
        }


class AbsenceIn(BaseModel):
    """`PUT /api/v1/persons/{person_id}/absences/{absence_id}`; `until` after `from` (409)."""

    from_: IsoDateTime = Field(alias="from")
    until: IsoDateTime
    reason: Annotated[str, _text(500)] | None = Field(
        default=None, description="e.g. in hospital (personal data: erased with the person)"
    )


class NoteIn(BaseModel):
    text: Annotated[str, _text(1000)] = Field(
        description="what the night must know: what to watch, an extra visit, a key moved"
    )


class FollowUpIn(BaseModel):
    """`PUT /api/v1/persons/{person_id}/follow-up`: why the person must be followed up."""

    reason: Annotated[str, _text(300)] = Field(
        description="short: what must not be forgotten at the shift change"
    )


class Visit(BaseModel):
    """`GET /api/v1/escalations/{id}/visit`: what the patrol needs at the door."""

    escalation: EscalationRow
    person: PersonRecord | None = Field(description="the person (the read is audited)")
    case: list[CaseStep] = Field(description="the alarm's case (empty for a night check)")
    handover_notes: list[HandoverNote]
