"""Hand-over notes for the night patrol: the notes of its area when its shift starts, each
acknowledged (audited). A note is left on a person: `POST /api/v1/persons/{id}/handover-notes`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from alarms.people import notes_psycopg as notes
from alarms.people.notes_psycopg import HandoverNote, PatrolNote
from api.auth import Permission, Principal, require
from api.errors import ApiError
from api.models import problems
from api.params import SiteFilter

router = APIRouter(prefix="/api/v1/handover-notes", tags=["handover notes"])
Patrol = Annotated[Principal, Depends(require(Permission.HANDOVER_WORK))]
ERRORS = problems(401, 403, 404, 409)


@router.get("", response_model=list[PatrolNote], responses=ERRORS)
async def list_notes(
    request: Request,
    principal: Patrol,
    site: SiteFilter = None,
) -> list[PatrolNote]:
    """The notes of the current and coming night of `site` (all sites if absent) and every one
    not acknowledged yet, those first, with the person's name and address. Each person shown
    is audited (`person.read` via the hand-over notes)."""
    async with request.app.state.pool.connection() as conn:
        return await notes.notes_for_patrol(conn, site=site, by=principal.actor)


@router.post("/{note_id}/ack", response_model=HandoverNote, responses=ERRORS)
async def acknowledge(request: Request, principal: Patrol, note_id: uuid.UUID) -> HandoverNote:
    """The patrol has read the note (audited; ends its `handover.unacknowledged`). 409 if it
    was acknowledged before."""
    try:
        async with request.app.state.pool.connection() as conn:
            return await notes.acknowledge(conn, note_id, by=principal.actor)
    except notes.NoteNotFound:
        raise ApiError(status=404, code="not_found", message="no such note") from None
    except notes.NoteRefused as exc:
        raise ApiError(status=409, code="conflict", message=str(exc)) from None
