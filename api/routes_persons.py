"""The person registry (supervisor and admin read; admin writes and erases). Every read, write
and erasure is audited by the database function that does it (migration 0009)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from alarms.people import persons_psycopg
from api.auth import Permission, Principal, require
from api.errors import ApiError
from api.models import PersonIn, PersonOut, problems

router = APIRouter(prefix="/api/v1/persons", tags=["persons"])
Reader = Annotated[Principal, Depends(require(Permission.PERSONS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PERSONS_WRITE))]
Ref = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
ERRORS = problems(401, 403, 404, 409)


@router.get("/{person_ref}", response_model=PersonOut, responses=ERRORS)
async def get_person(request: Request, principal: Reader, person_ref: Ref) -> PersonOut:
    """One person's record. The read is written to the audit log (who, when)."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        row = await persons_psycopg.get_person(conn, person_ref, by=principal.actor)
    if row is None:
        raise ApiError(status=404, code="not_found", message="no such person")
    return PersonOut.model_validate(row)


@router.put("/{person_ref}", response_model=PersonOut, responses=ERRORS)
async def put_person(
    request: Request, principal: Writer, person_ref: Ref, body: PersonIn
) -> PersonOut:
    """Create or replace a person's record (audited)."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        row = await persons_psycopg.put_person(
            conn, {**body.model_dump(), "person_ref": person_ref}, by=principal.actor
        )
    return PersonOut.model_validate(row)


@router.delete(
    "/{person_ref}",
    status_code=204,
    response_class=Response,
    responses={**ERRORS, 204: {"description": "erased"}},
)
async def erase_person(request: Request, principal: Writer, person_ref: Ref) -> Response:
    """Erasure (GDPR art. 17): the person's record and the free text naming them on their
    device's alarms and escalations. Audited as `person.erased` (no personal data), also when
    there is no such person (404)."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        found = await persons_psycopg.erase_person(conn, person_ref, by=principal.actor)
    if not found:
        raise ApiError(status=404, code="not_found", message="no such person")
    return Response(status_code=204)
