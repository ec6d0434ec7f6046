"""Flood mode: incidents, one queue row for a burst of technical alarms, answered or resolved
in one action (each alarm moved and audited on its own)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from alarms.queue import incidents_psycopg as inc
from alarms.queue import queries_psycopg as q
from alarms.queue.lifecycle import Action
from api.auth import Permission, Principal, require
from api.errors import ApiError, require_configured_outcome
from api.models import ResolveIn, problems

router = APIRouter(prefix="/api/v1/incidents", tags=["alarms"])
Reader = Annotated[Principal, Depends(require(Permission.ALARMS_READ))]
Actor = Annotated[Principal, Depends(require(Permission.ALARMS_ACT))]
ERRORS = problems(401, 403, 404)


@router.get("", response_model=list[inc.IncidentRow], responses=ERRORS)
async def list_incidents(request: Request, principal: Reader) -> list[inc.IncidentRow]:
    """Open incidents, oldest first, with how many of their alarms wait and are answered."""
    async with request.app.state.pool.connection() as conn:
        return await inc.list_incidents(conn)


async def _all(
    request: Request,
    principal: Principal,
    incident_id: uuid.UUID,
    action: Action,
    body: ResolveIn | None = None,
) -> list[q.AlarmRow]:
    text, note = (body.outcome, body.note) if body else (None, None)
    try:
        async with request.app.state.pool.connection() as conn:
            moved = await inc.act_on_all(
                conn, incident_id, action, by=principal.actor, text=text, note=note
            )
    except inc.IncidentNotFound:
        raise ApiError(status=404, code="not_found", message="no such incident") from None
    request.app.state.api_metrics.actions.labels(f"incident_{action.value}", "ok").inc()
    return moved


@router.post("/{incident_id}/answer", response_model=list[q.AlarmRow], responses=ERRORS)
async def answer_all(
    request: Request, principal: Actor, incident_id: uuid.UUID
) -> list[q.AlarmRow]:
    """Answer every waiting alarm of the incident (each audited); returns those answered."""
    return await _all(request, principal, incident_id, Action.ANSWER)


@router.post("/{incident_id}/resolve", response_model=list[q.AlarmRow], responses=ERRORS)
async def resolve_all(
    request: Request, principal: Actor, incident_id: uuid.UUID, body: ResolveIn
) -> list[q.AlarmRow]:
    """Resolve every answered alarm of the incident with one outcome code (each audited)."""
    require_configured_outcome(request, body.outcome, field="outcome")
    return await _all(request, principal, incident_id, Action.RESOLVE, body)
