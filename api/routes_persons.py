"""The person registry (contract §6): the record (supervisor and admin read; admin writes and
erases), absence windows (supervisor, admin), hand-over notes left on a person for the night
and the mark "follow up" (operator, supervisor). Every read, write and erasure is audited by the
database function or statement that does it (migrations 0009, 0012, 0013, 0018)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Request, Response

from alarms.people import follow_ups_psycopg as follow_ups
from alarms.people import notes_psycopg as notes
from alarms.people import persons_psycopg as persons
from alarms.people.notes_psycopg import HandoverNote
from alarms.people.record import Absence, PersonRecord, note_due, note_shown_until
from api.auth import Permission, Principal, require
from api.errors import ApiError
from api.models import problems
from api.models_persons import AbsenceId, AbsenceIn, FollowUpIn, NoteIn, PersonIn

router = APIRouter(prefix="/api/v1/persons", tags=["persons"])
Reader = Annotated[Principal, Depends(require(Permission.PERSONS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PERSONS_WRITE))]
AbsenceWriter = Annotated[Principal, Depends(require(Permission.ABSENCES_WRITE))]
NoteWriter = Annotated[Principal, Depends(require(Permission.HANDOVER_WRITE))]
Marker = Annotated[Principal, Depends(require(Permission.FOLLOW_UP))]
Ref = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
ERRORS = problems(401, 403, 404, 409)
NOT_FOUND = ApiError(status=404, code="not_found", message="no such person")


@contextlib.contextmanager
def _refusals(refused: type[Exception]) -> Iterator[None]:
    """404 for no such person; 409 with its reason for `refused` (what the person's state does
    not allow)."""
    try:
        yield
    except persons.PersonNotFound:
        raise NOT_FOUND from None
    except refused as exc:
        raise ApiError(status=409, code="conflict", message=str(exc)) from None


def _no_content(done: str) -> dict[str, Any]:
    """A route that answers 204 with no body when `done`, or one of the API's errors."""
    return {
        "status_code": 204,
        "response_class": Response,
        "responses": {**ERRORS, 204: {"description": done}},
    }


@router.get("/{person_ref}", response_model=PersonRecord, responses=ERRORS)
async def get_person(request: Request, principal: Reader, person_ref: Ref) -> PersonRecord:
    """One person's record with their absences. The read is written to the audit log (who,
    when), also when there is no such person."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        record = await persons.get_person(conn, person_ref, by=principal.actor)
    if record is None:
        raise NOT_FOUND
    return record


@router.put("/{person_ref}", response_model=PersonRecord, responses=ERRORS)
async def put_person(
    request: Request, principal: Writer, person_ref: Ref, body: PersonIn
) -> PersonRecord:
    """Create or replace a person's record (audited). A device or plan that is another
    person's is 409."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        return await persons.put_person(conn, person_ref, body.stored(), by=principal.actor)


@router.delete(
    "/{person_ref}",
    **_no_content("erased"),
)
async def erase_person(request: Request, principal: Writer, person_ref: Ref) -> Response:
    """Erasure (GDPR art. 17): the person's record, absences and hand-over notes, and the free
    text naming them on their devices' alarms, cases and escalations. Audited as
    `person.erased` (no personal data), also when there is no such person (404)."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        found = await persons.erase_person(conn, person_ref, by=principal.actor)
    if not found:
        raise NOT_FOUND
    return Response(status_code=204)


@router.put("/{person_ref}/absences/{absence_id}", response_model=Absence, responses=ERRORS)
async def put_absence(
    request: Request,
    principal: AbsenceWriter,
    person_ref: Ref,
    absence_id: Annotated[AbsenceId, Path()],
    body: AbsenceIn,
) -> Absence:
    """A person away in [from, until) (hospital, travel), created or replaced: no
    `device.offline` and no night checks for the person's devices and plans inside it; it ends
    by itself. An alarm that comes anyway is flagged `absent` in the queue. 409 if it does not
    end after it starts, or the person has 100 already."""
    with _refusals(persons.AbsenceRefused):
        async with request.app.state.pool.connection() as conn, conn.transaction():
            return await persons.put_absence(
                conn,
                person_ref,
                absence_id,
                start=body.from_,
                until=body.until,
                reason=body.reason,
                by=principal.actor,
            )


@router.post(
    "/{person_ref}/handover-notes",
    response_model=HandoverNote,
    status_code=201,
    responses=ERRORS,
)
async def leave_note(
    request: Request, principal: NoteWriter, person_ref: Ref, body: NoteIn
) -> HandoverNote:
    """A note from the day team to the night patrol of the person's site (what to watch, an
    extra visit, a key moved). It must be acknowledged by `LARM_HANDOVER_ACK_BY` (22:30 local)
    that evening, or within `LARM_HANDOVER_ACK_LATE_S` if left after it; otherwise the
    supervisor gets `handover.unacknowledged`. 409 if the person has no site or has
    `LARM_HANDOVER_NOTES_MAX` notes for the night."""
    settings = request.app.state.settings
    tz = ZoneInfo(settings.timezone)
    due = note_due(
        datetime.now(UTC),
        ack_by=time.fromisoformat(settings.handover_ack_by),
        late_s=settings.handover_ack_late_s,
        tz=tz,
    )
    with _refusals(notes.NoteRefused):
        async with request.app.state.pool.connection() as conn:
            return await notes.leave_note(
                conn,
                person_ref,
                text=body.text,
                due_at=due,
                shown_until=note_shown_until(due, tz=tz),
                by=principal.actor,
                max_notes=settings.handover_notes_max,
            )


@router.put("/{person_ref}/follow-up", response_model=follow_ups.FollowUp, responses=ERRORS)
async def mark_follow_up(
    request: Request, principal: Marker, person_ref: Ref, body: FollowUpIn
) -> follow_ups.FollowUp:
    """Mark the person "follow up" with a short reason (marking again replaces it): the
    hand-over lists the person, with who marked them, until the mark is cleared. An operator
    may mark the person of an alarm they see (open, or resolved in the last day); the
    supervisor anyone. Otherwise, or no such person: 404. Audited (never the reason)."""
    async with request.app.state.pool.connection() as conn:
        marked = await follow_ups.mark(conn, person_ref, reason=body.reason, by=principal.actor)
    if marked is None:
        raise NOT_FOUND
    return marked


@router.delete(
    "/{person_ref}/follow-up",
    **_no_content("cleared"),
)
async def clear_follow_up(request: Request, principal: Marker, person_ref: Ref) -> Response:
    """Done: the mark is cleared (audited, with who had marked the person). 404 if the person
    is not marked."""
    async with request.app.state.pool.connection() as conn:
        cleared = await follow_ups.clear(conn, person_ref, by=principal.actor)
    if not cleared:
        raise ApiError(status=404, code="not_found", message="the person is not marked")
    return Response(status_code=204)
