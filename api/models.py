"""Request and response bodies of the HTTP API (they are the OpenAPI schema)."""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field, StringConstraints

from alarms.cases.rules import OUTCOME_PATTERN, CaseStep
from alarms.night.plans_psycopg import CheckView
from alarms.people.follow_ups_psycopg import FollowUp
from alarms.people.notes_psycopg import HandoverNote
from alarms.people.record import PersonRecord
from alarms.queue.answer_time import AnswerTimeStats
from alarms.queue.queries_psycopg import AlarmRow

# Free text: not blank (a character other than ASCII white space) and no NUL (PostgreSQL cannot
# store one). Said in the schema, with the same class in both regex engines (no `\s`, whose
# meaning differs between Python's and pydantic's), so a client knows before it sends.
TEXT_PATTERN = r"^[^\x00]*[^\x00 \t\n\r\f\v][^\x00]*$"
Text = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=TEXT_PATTERN)]
# A local wall-clock time, e.g. "22:00" or "01:30:00".
LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
# An IANA time zone this machine knows (the schema lists them: a name it does not know is
# refused by the schema, not found out later).
if TYPE_CHECKING:
    TimeZoneName = str
else:
    TimeZoneName = Literal[tuple(sorted(zoneinfo.available_timezones()))]


def _iso(kind: type, pattern: str, message: str) -> BeforeValidator:
    """Only the ISO form is a date or a time here: pydantic would also take 0 or "0" as
    1970-01-01 and 0.5 as a Unix time, which the schema's `format` does not allow."""
    form = re.compile(pattern)

    def check(value: object) -> object:
        if isinstance(value, kind):
            return value
        if not isinstance(value, str) or not form.match(value):
            raise ValueError(message)
        return value

    return BeforeValidator(check)


IsoDate = Annotated[date, _iso(date, r"[0-9]{4}-[0-9]{2}-[0-9]{2}$", "a date is YYYY-MM-DD")]
IsoDateTime = Annotated[
    AwareDatetime,
    _iso(
        datetime,
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]",
        "a time is RFC 3339, e.g. 2026-12-01T08:00:00+01:00",
    ),
]


class Problem(BaseModel):
    error: str
    message: str


def problems(*codes: int) -> dict[int | str, dict[str, object]]:
    """The error answers a route declares in its OpenAPI (all in the `Problem` shape)."""
    return {code: {"model": Problem} for code in codes}


class EscalateIn(BaseModel):
    reason: Text = Field(
        description="What the patrol must know. It is published on MQTT to the patrol's "
        "system: never a door code, key code or lock code (the patrol has the key reference)."
    )


class ResolveIn(BaseModel):
    outcome: Annotated[str, StringConstraints(pattern=OUTCOME_PATTERN)] = Field(
        description="one of `GET /api/v1/outcomes` (the schema lists the configured codes)"
    )
    note: Text | None = Field(default=None, description="a closing note, kept in the case")


class NoteIn(BaseModel):
    text: Text


class CallIn(BaseModel):
    contact: Annotated[
        str, StringConstraints(min_length=1, max_length=200, pattern=TEXT_PATTERN)
    ] = Field(description="whom the operator called: a contact's name or the number")
    reached: bool


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
        list[Annotated[str, StringConstraints(pattern=LOCAL_TIME_PATTERN)]],
        Field(min_length=1, max_length=48, json_schema_extra={"uniqueItems": True}),
    ] = Field(description='local wall-clock times, e.g. ["22:00", "01:30", "04:00"]')
    window_minutes: Annotated[float, Field(gt=0, le=180)] = 15.0
    timezone: TimeZoneName = "Europe/Stockholm"
    paused_nights: list[IsoDate] = Field(
        default_factory=list, description="nights (named by their evening's date) not checked"
    )


class PlanOut(PlanIn):
    plan_id: str
    created: bool = False
    checks_upcoming: list[CheckView] = []


class CompleteIn(BaseModel):
    outcome: Text = Field(description="what the patrol found and did (free text)")
    code: Annotated[str, StringConstraints(pattern=OUTCOME_PATTERN)] | None = Field(
        default=None, description="optionally, one of `GET /api/v1/outcomes`"
    )


class CancelIn(BaseModel):
    reason: Text


class AlarmCaseOut(AlarmRow):
    """`GET /api/v1/alarms/{alarm_id}`: the alarm, the person behind it, and its case."""

    person: PersonRecord | None = Field(
        default=None,
        description="the person whose device raised it: for its operator (while it is open and "
        "a day after) and the patrol with a live escalation of it; null otherwise or when "
        "nobody is linked. The read is audited.",
    )
    case: list[CaseStep] = Field(description="every step in time order, with who and when")
    handover_notes: list[HandoverNote] = Field(
        default_factory=list,
        description="notes from home care for the night, with their acknowledgement, left "
        "before the alarm (shown with the person)",
    )
    follow_up: FollowUp | None = Field(
        default=None,
        description='the person\'s mark "follow up", if any (shown with the person)',
    )
