"""The person registry (supervisor and admin read; admin writes). Every read is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from alarms.people import audit_psycopg, persons_psycopg
from api.auth import Permission, Principal, require
from api.errors import ApiError
from api.models import PersonIn, PersonOut, Problem

router = APIRouter(prefix="/api/v1/persons", tags=["persons"])
Reader = Annotated[Principal, Depends(require(Permission.PERSONS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.PERSONS_WRITE))]
Ref = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem},
    403: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
}


@router.get("/{person_ref}", response_model=PersonOut, responses=ERRORS)
async def get_person(request: Request, principal: Reader, person_ref: Ref) -> PersonOut:
    """One person's record. The read is written to the audit log (who, when)."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        row = await persons_psycopg.get_person(conn, person_ref)
        await audit_psycopg.record(
            conn,
            by=principal.actor,
            action="person.read",
            subject=("person", person_ref),
            details={"found": row is not None},
        )
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
            conn, {**body.model_dump(), "person_ref": person_ref, "updated_by": principal.name}
        )
        await audit_psycopg.record(
            conn, by=principal.actor, action="person.write", subject=("person", person_ref)
        )
    return PersonOut.model_validate(row)
