"""The device registry: one device's state, and lists filtered by state (contract §3)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from alarms.devices import queries_psycopg as q
from alarms.devices import tests_due_psycopg as td
from alarms.people import audit_psycopg
from api.auth import Permission, Principal, require
from api.errors import ApiError
from api.models import problems
from api.params import Limit, SiteFilter
from larmkedja.events import DEVICE_ID_PATTERN
from larmkedja.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["devices"])
Reader = Annotated[Principal, Depends(require(Permission.DEVICES_READ))]
Caller = Annotated[Principal, Depends(require(Permission.ALARMS_ACT))]
ERRORS = problems(401, 403, 404)


@router.get("/devices/{device_id}", response_model=q.DeviceRow, responses=ERRORS)
async def get_device(
    request: Request,
    principal: Reader,
    device_id: Annotated[str, Path(pattern=DEVICE_ID_PATTERN)],
    poll: Annotated[
        bool,
        Query(
            description="true: a page's timer refreshing what it shows, not a person opening"
            " the device; such reads are not audited (a device's state is not personal data)"
        ),
    ] = False,
) -> q.DeviceRow:
    """Is it alive, on mains, and how long would its battery last (`backup_hours_estimate`).
    Audited (`device.read`) unless `poll=true`."""
    async with request.app.state.pool.connection() as conn, conn.transaction():
        row = await q.get_device(
            conn, device_id, spec_hours=request.app.state.settings.battery_spec_hours
        )
        if not poll:
            await audit_psycopg.record(
                conn, by=principal.actor, action="device.read", subject=("device", device_id)
            )
    if row is None:
        raise ApiError(status=404, code="not_found", message="no such device")
    return row


@router.get("/devices", response_model=list[q.DeviceRow], responses=ERRORS)
async def list_devices(
    request: Request,
    principal: Reader,
    state: Literal["online", "offline", "on_battery", "below_spec", "link_lost"] | None = None,
    site: SiteFilter = None,
    limit: Limit = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[q.DeviceRow]:
    """Devices, by site and id, optionally only those offline, on battery, below spec…"""
    settings: Settings = request.app.state.settings
    async with request.app.state.pool.connection() as conn:
        rows = await q.list_devices(
            conn,
            site=site,
            state=state,
            limit=limit,
            offset=offset,
            spec_hours=settings.battery_spec_hours,
        )
    return rows


@router.post(
    "/devices/{device_id}/test-request",
    response_model=td.RequestedTest,
    status_code=201,
    responses=ERRORS,
)
async def request_test(
    request: Request,
    principal: Caller,
    device_id: Annotated[str, Path(pattern=DEVICE_ID_PATTERN)],
) -> td.RequestedTest:
    """The operator asks the user for a test press now (on a test call): if no alarm arrives
    from the device within LARM_TEST_REQUEST_WINDOW_S, it is the technical alarm
    `device.test_failed`. Audited."""
    settings: Settings = request.app.state.settings
    async with request.app.state.pool.connection() as conn, conn.transaction():
        found = await td.request_test(
            conn, device_id=device_id, by=principal.name, window_s=settings.test_request_window_s
        )
        if found is not None:
            await audit_psycopg.record(
                conn,
                by=principal.actor,
                action="device.test_request",
                subject=("device", device_id),
            )
    if found is None:
        raise ApiError(status=404, code="not_found", message="no such device")
    return found
