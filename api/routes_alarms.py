"""The operator queue: list, answer, escalate, resolve (contract §3)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request

from alarms.queue import queries_psycopg as q
from alarms.queue.lifecycle import Action, TransitionError
from api.auth import Permission, Principal, require
from api.errors import counted_action, require_configured_outcome
from api.models import EscalateIn, ResolveIn, problems
from api.params import Limit, SiteFilter

router = APIRouter(prefix="/api/v1", tags=["alarms"])
Reader = Annotated[Principal, Depends(require(Permission.ALARMS_READ))]
Actor = Annotated[Principal, Depends(require(Permission.ALARMS_ACT))]
ERRORS = problems(401, 403, 404, 409)
StateFilter = Literal["open", "raised", "answered", "escalated", "resolved", "all"]


@router.get("/alarms", response_model=list[q.AlarmRow], responses=ERRORS)
async def list_alarms(
    request: Request,
    principal: Reader,
    state: StateFilter = "open",
    site: SiteFilter = None,
    limit: Limit = 500,
) -> list[q.AlarmRow]:
    """Alarms in queue order: priority first (1 most urgent), then oldest first."""
    async with request.app.state.pool.connection() as conn:
        return await q.list_alarms(conn, state=state, site=site, limit=limit)


async def _act(
    request: Request,
    principal: Principal,
    alarm_id: uuid.UUID,
    action: Action,
    text: str | None,
    note: str | None = None,
) -> q.AlarmRow:
    ack_s = request.app.state.settings.patrol_ack_minutes * 60.0
    async with counted_action(
        request, action.value, what="alarm", missing=q.AlarmNotFound, refused=TransitionError
    ) as conn:
        row = await q.act(
            conn, alarm_id, action, by=principal.actor, text=text, note=note, ack_s=ack_s
        )
    answer_time = row.answer_time_s()
    if row.answered_now and row.counts_for_answer_time and answer_time is not None:
        request.app.state.api_metrics.answer_time.observe(answer_time)
    return row


@router.post("/alarms/{alarm_id}/answer", response_model=q.AlarmRow, responses=ERRORS)
async def answer(request: Request, principal: Actor, alarm_id: uuid.UUID) -> q.AlarmRow:
    """The operator takes the alarm. 409 if it is already answered or closed."""
    return await _act(request, principal, alarm_id, Action.ANSWER, None)


@router.post("/alarms/{alarm_id}/escalate", response_model=q.AlarmRow, responses=ERRORS)
async def escalate(
    request: Request, principal: Actor, alarm_id: uuid.UUID, body: EscalateIn
) -> q.AlarmRow:
    """Send the night patrol: creates an escalation (published on the escalations topic)."""
    return await _act(request, principal, alarm_id, Action.ESCALATE, body.reason)


@router.post("/alarms/{alarm_id}/resolve", response_model=q.AlarmRow, responses=ERRORS)
async def resolve(
    request: Request, principal: Actor, alarm_id: uuid.UUID, body: ResolveIn
) -> q.AlarmRow:
    """Close the alarm with an outcome code of `GET /api/v1/outcomes` and an optional note
    (only after it was answered); 422 for a code not in the list."""
    require_configured_outcome(request, body.outcome, field="outcome")
    return await _act(request, principal, alarm_id, Action.RESOLVE, body.outcome, body.note)
