"""The case of an alarm (contract §6): the whole record, notes, call attempts, take-over, and
the outcome codes it is closed with."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from alarms.cases import CaseAction, CaseStep
from alarms.cases import cases_psycopg as c
from alarms.cases.handover_psycopg import Handover, handover
from alarms.people import follow_ups_psycopg as follow_ups
from alarms.people import notes_psycopg as notes
from alarms.people import persons_psycopg as persons
from alarms.queue import queries_psycopg as q
from api.auth import Permission, Principal, require
from api.errors import ApiError, counted_action
from api.models import AlarmCaseOut, CallIn, NoteIn, problems
from api.params import SiteFilter

router = APIRouter(prefix="/api/v1", tags=["cases"])
Reader = Annotated[Principal, Depends(require(Permission.CASE_READ))]
Noter = Annotated[Principal, Depends(require(Permission.CASE_NOTE))]
Actor = Annotated[Principal, Depends(require(Permission.ALARMS_ACT))]
Queue = Annotated[Principal, Depends(require(Permission.ALARMS_READ))]
ERRORS = problems(401, 403, 404, 409)


@router.get("/outcomes", response_model=list[str], responses=ERRORS)
async def outcomes(request: Request, principal: Reader) -> list[str]:
    """The codes an alarm is resolved with, as this municipality configured them."""
    return list(request.app.state.settings.outcome_codes)


@router.get("/alarms/{alarm_id}", response_model=AlarmCaseOut, responses=ERRORS)
async def get_alarm(request: Request, principal: Reader, alarm_id: uuid.UUID) -> AlarmCaseOut:
    """The alarm, the person behind it and its whole case: every step in time order with who
    and when, and the hand-over notes from home care left before it. The operator and the
    supervisor see the person while the alarm is open and a day after; the patrol while it has
    a live escalation of it. Each read of a person is audited."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        alarm = await q.get_alarm(conn, alarm_id)
        if alarm is None:
            raise ApiError(status=404, code="not_found", message="no such alarm")
        steps = await c.get_case(conn, alarm)
        person = await persons.person_of_alarm(conn, alarm_id, by=principal.actor)
        handover, mark = [], None
        if person:
            ref = person.person_ref
            handover = await notes.notes_of_case(conn, person_ref=ref, at=alarm.raised_at)
            mark = await follow_ups.of_person(conn, ref)
    return AlarmCaseOut(
        **alarm.model_dump(), person=person, case=steps, handover_notes=handover, follow_up=mark
    )


async def _step(
    request: Request,
    principal: Principal,
    alarm_id: uuid.UUID,
    action: CaseAction,
    detail: dict[str, Any],
) -> CaseStep:
    async with counted_action(
        request, action.value, what="alarm", missing=q.AlarmNotFound, refused=c.StepRefused
    ) as conn:
        return await c.add_step(
            conn, alarm_id=alarm_id, by=principal.actor, action=action, detail=detail
        )


@router.post("/alarms/{alarm_id}/notes", response_model=CaseStep, status_code=201, responses=ERRORS)
async def add_note(
    request: Request, principal: Noter, alarm_id: uuid.UUID, body: NoteIn
) -> CaseStep:
    """A note in the alarm's case, by the operator or the patrol (in any state)."""
    return await _step(request, principal, alarm_id, CaseAction.NOTE, {"text": body.text})


@router.post("/alarms/{alarm_id}/calls", response_model=CaseStep, status_code=201, responses=ERRORS)
async def add_call(
    request: Request, principal: Actor, alarm_id: uuid.UUID, body: CallIn
) -> CaseStep:
    """A call attempt to a contact (reached or not); 409 unless the alarm is answered."""
    detail = {"contact": body.contact, "reached": body.reached}
    return await _step(request, principal, alarm_id, CaseAction.CALL, detail)


@router.post("/alarms/{alarm_id}/take-over", response_model=q.AlarmRow, responses=ERRORS)
async def take_over(request: Request, principal: Actor, alarm_id: uuid.UUID) -> q.AlarmRow:
    """Take over another operator's alarm (at a shift change): audited, in the case."""
    async with counted_action(
        request, "take_over", what="alarm", missing=q.AlarmNotFound, refused=c.StepRefused
    ) as conn:
        return await c.take_over(conn, alarm_id=alarm_id, by=principal.actor)


@router.get("/handover", response_model=Handover, responses=ERRORS)
async def get_handover(
    request: Request,
    principal: Queue,
    site: SiteFilter = None,
) -> Handover:
    """What the next shift takes over: every open alarm and escalation not completed, every
    device fault older than a day, each with who has it now, and every person marked "follow
    up" with who marked them (each person listed is audited)."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        return await handover(conn, site=site, by=principal.actor)
