"""The night patrol's work: open escalations, acknowledge, arrive, complete; cancel."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request

from alarms.cases import cases_psycopg as cases
from alarms.patrol import escalations_psycopg as q
from alarms.patrol.lifecycle import EscalationAction, EscalationTransitionError
from alarms.people import notes_psycopg as notes
from alarms.people import persons_psycopg as persons
from alarms.queue import queries_psycopg as alarms
from api.auth import Permission, Principal, require
from api.errors import ApiError, counted_action, require_configured_outcome
from api.models import CancelIn, CompleteIn, problems
from api.models_persons import Visit
from api.params import Limit, SiteFilter

router = APIRouter(prefix="/api/v1/escalations", tags=["escalations"])
Reader = Annotated[Principal, Depends(require(Permission.ESCALATIONS_READ))]
Worker = Annotated[Principal, Depends(require(Permission.ESCALATIONS_WORK))]
Canceller = Annotated[Principal, Depends(require(Permission.ESCALATIONS_CANCEL))]
ERRORS = problems(401, 403, 404, 409)


@router.get("", response_model=list[q.EscalationRow], responses=ERRORS)
async def list_escalations(
    request: Request,
    principal: Reader,
    state: Literal["open", "acknowledged", "arrived", "completed", "cancelled", "all"] = "open",
    site: SiteFilter = None,
    limit: Limit = 500,
) -> list[q.EscalationRow]:
    """`open` means not ended: open, acknowledged or arrived. Oldest first."""
    async with request.app.state.pool.connection() as conn:
        rows = await q.list_escalations(conn, state=state, site=site, limit=limit)
    return rows


@router.get("/{escalation_id}/visit", response_model=Visit, responses=ERRORS)
async def visit(request: Request, principal: Worker, escalation_id: uuid.UUID) -> Visit:
    """What the patrol needs at the door: the person (name, address, how to get in, notes),
    the alarm's case (the operator's notes) and the hand-over notes from home care. The patrol
    sees the person while the escalation is live; the read is audited."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        escalation = await q.get_escalation(conn, escalation_id)
        if escalation is None:
            raise ApiError(status=404, code="not_found", message="no such escalation")
        person = await persons.person_of_escalation(conn, escalation_id, by=principal.actor)
        alarm = await alarms.get_alarm(conn, escalation.alarm_id) if escalation.alarm_id else None
        steps = await cases.get_case(conn, alarm) if alarm else []
        handover = (
            await notes.notes_of_case(
                conn,
                person_ref=person.person_ref,
                at=alarm.raised_at if alarm else escalation.created_at,
            )
            if person
            else []
        )
    return Visit(escalation=escalation, person=person, case=steps, handover_notes=handover)


async def _act(
    request: Request,
    principal: Principal,
    escalation_id: uuid.UUID,
    action: EscalationAction,
    text: str | None = None,
    code: str | None = None,
) -> q.EscalationRow:
    async with counted_action(
        request,
        f"escalation.{action.value}",
        what="escalation",
        missing=q.EscalationNotFound,
        refused=EscalationTransitionError,
    ) as conn:
        row = await q.act(conn, escalation_id, action, by=principal.actor, text=text, code=code)
    if action is EscalationAction.ARRIVE and row.arrived_at is not None:
        request.app.state.api_metrics.arrival.observe(
            (row.arrived_at - row.created_at).total_seconds()
        )
    return row


@router.post("/{escalation_id}/ack", response_model=q.EscalationRow, responses=ERRORS)
async def ack(request: Request, principal: Worker, escalation_id: uuid.UUID) -> q.EscalationRow:
    """The patrol has taken it (stops the `escalation.unacknowledged` reminders)."""
    return await _act(request, principal, escalation_id, EscalationAction.ACK)


@router.post("/{escalation_id}/arrive", response_model=q.EscalationRow, responses=ERRORS)
async def arrive(request: Request, principal: Worker, escalation_id: uuid.UUID) -> q.EscalationRow:
    """The patrol is at the door."""
    return await _act(request, principal, escalation_id, EscalationAction.ARRIVE)


@router.post("/{escalation_id}/complete", response_model=q.EscalationRow, responses=ERRORS)
async def complete(
    request: Request, principal: Worker, escalation_id: uuid.UUID, body: CompleteIn
) -> q.EscalationRow:
    """Done, with an outcome (the only way a patrol ends an escalation) and optionally an
    outcome code of `GET /api/v1/outcomes` (422 for one not in the list)."""
    if body.code is not None:
        require_configured_outcome(request, body.code, field="code")
    return await _act(
        request, principal, escalation_id, EscalationAction.COMPLETE, body.outcome, body.code
    )


@router.post("/{escalation_id}/cancel", response_model=q.EscalationRow, responses=ERRORS)
async def cancel(
    request: Request, principal: Canceller, escalation_id: uuid.UUID, body: CancelIn
) -> q.EscalationRow:
    """A supervisor calls the patrol off, with a reason."""
    return await _act(request, principal, escalation_id, EscalationAction.CANCEL, body.reason)
