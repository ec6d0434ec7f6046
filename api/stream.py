"""`GET /api/v1/stream` (WebSocket): live changes of alarms and escalations.

The database notifies every change of an alarm or escalation on commit (`larm_changes`, from
triggers, whichever process made it). One listener per API process reads the row once and fans
it out to the connected clients whose role may see it. A client first gets a snapshot of what is
open; if the listener loses the database it sends `resync` with a fresh snapshot on return.

Authentication: `Authorization: Bearer …`, or (browsers cannot set headers on a WebSocket) the
subprotocols `larmkedja.v1` and `bearer.<token>`; the server answers with `larmkedja.v1`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import orjson
import psycopg
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from alarms.patrol import escalations_psycopg as esc
from alarms.queue import queries_psycopg as q
from api.auth import Permission, Principal, TokenCache, authenticate
from api.errors import ApiError
from larmkedja.changes import CHANNEL, ChangeNotice, Entity
from larmkedja.db_connect import AsyncDeadlineConnection

log = logging.getLogger(__name__)
router = APIRouter()
SUBPROTOCOL = "larmkedja.v1"
QUEUE_LIMIT = 1000
SLOW_S = 0.25  # a change held back this long is logged
BATCH = 500  # changes read with one statement
POLICY_VIOLATION = 1008  # the close code of a stream whose token was revoked or expired


@dataclass(eq=False)
class StreamClient:
    principal: Principal
    queue: asyncio.Queue[bytes | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_LIMIT)
    )

    def sees(self, entity: Entity) -> bool:
        if entity is Entity.ALARM:
            return self.principal.may(Permission.ALARMS_READ)
        return self.principal.may(Permission.ESCALATIONS_READ)


class ChangeHub:
    def __init__(
        self, *, conninfo: str, pool: AsyncConnectionPool, deadline_s: float = 5.0
    ) -> None:
        self._conninfo = conninfo
        self._pool = pool
        self._deadline_s = deadline_s
        self._clients: set[StreamClient] = set()
        self.connected = asyncio.Event()
        # Changes read and not yet sent, in the order they came, each (entity, id) once: the
        # row sent is the current one, so a second change of the same row adds nothing.
        self._pending: dict[tuple[Entity, uuid.UUID], None] = {}
        self._woken = asyncio.Event()

    @property
    def clients(self) -> int:
        return len(self._clients)

    def add(self, client: StreamClient) -> None:
        self._clients.add(client)

    def remove(self, client: StreamClient) -> None:
        self._clients.discard(client)

    async def run(self) -> None:
        sender = asyncio.create_task(self._send_forever(), name="change-sender")
        try:
            await self._listen_forever()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _listen_forever(self) -> None:
        delay, first = 0.5, True
        while True:
            try:
                async with await AsyncDeadlineConnection.connect(
                    self._conninfo, deadline_s=self._deadline_s, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}".encode())
                    self.connected.set()
                    if not first:
                        await self._resync()
                    first, delay = False, 0.5
                    await self._listen(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the listener must outlive any failure
                self.connected.clear()
                log.warning("change listener lost the database (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _listen(self, conn: AsyncDeadlineConnection) -> None:
        """Dispatch notifications; when none came for a while, ask the server whether it is
        still there (a hung primary sends nothing, and its silence looks like a quiet night):
        the ping has the deadline, and a failover moves the listener to the new primary."""
        while True:
            async for notify in conn.notifies(timeout=self._deadline_s / 2):
                self._note(notify.payload)
            started = time.perf_counter()
            await conn.execute("SELECT 1")
            _slow("the listener's ping", started)

    def _note(self, payload: str) -> None:
        """The listener only notes a change: reading the rows and sending them is the sender's,
        so a burst of changes (hundreds of devices going offline at once) never keeps the
        listener from reading the next notification, nor an alarm from the batch it is in."""
        change = ChangeNotice.parse(payload)
        if change is not None and any(c.sees(change.entity) for c in self._clients):
            self._pending[(change.entity, change.id)] = None
            self._woken.set()

    async def _send_forever(self) -> None:
        """Send the noted changes in batches: every change noted while a batch was read goes in
        the next one, its alarms read with one statement (escalations, rare, one by one) and
        sent most urgent first."""
        while True:
            await self._woken.wait()
            self._woken.clear()
            while self._pending:
                batch = list(itertools.islice(self._pending, BATCH))
                for key in batch:
                    del self._pending[key]
                try:
                    await self._send(batch)
                except Exception as exc:  # the database away: keep the changes, try again
                    log.warning("stream: %d changes not read (%s); retrying", len(batch), exc)
                    for key in batch:
                        self._pending.setdefault(key)
                    await asyncio.sleep(0.5)

    async def _send(self, batch: list[tuple[Entity, uuid.UUID]]) -> None:
        started = time.perf_counter()
        async with self._pool.connection() as conn:
            lent = time.perf_counter()
            messages = await _messages(conn, batch)
        _slow(f"reading {len(batch)} changes", started, lent)
        for entity, message in messages:
            for client in list(self._clients):
                if client.sees(entity):
                    _offer(client, message)

    async def _resync(self) -> None:
        """After the listener was away (a failover, a restart of PostgreSQL): every client
        starts again from a snapshot. Clients that see the same entities share one: the listener
        reads no notification meanwhile, and a snapshot of a queue of thousands (an area's
        devices offline) for every console one after another held the next alarm that long."""
        snapshots: dict[tuple[bool, bool], list[bytes]] = {}
        for client in list(self._clients):
            _offer(client, orjson.dumps({"type": "resync"}))
            sees = (client.sees(Entity.ALARM), client.sees(Entity.ESCALATION))
            if sees not in snapshots:
                snapshots[sees] = await snapshot(self._pool, client.principal)
            for message in snapshots[sees]:
                _offer(client, message)


def _slow(what: str, started: float, lent: float | None = None) -> None:
    """A warning when the stream's own work held its changes back (every change noted after
    it waited as long)."""
    took = time.perf_counter() - started
    if took >= SLOW_S:
        pool = f" ({(lent - started) * 1000:.0f} ms waiting for a connection)" if lent else ""
        log.warning("stream: %s took %.0f ms%s", what, took * 1000, pool)


def _offer(client: StreamClient, message: bytes) -> None:
    try:
        client.queue.put_nowait(message)
    except asyncio.QueueFull:
        # A client that cannot keep up is closed; it reconnects and gets a fresh snapshot.
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                client.queue.get_nowait()
        client.queue.put_nowait(None)


async def _messages(conn: Any, batch: list[tuple[Entity, uuid.UUID]]) -> list[tuple[Entity, bytes]]:
    """The current rows of a batch's changes as stream messages: alarms most urgent first
    (`urgent_first`), then escalations in the order they came; a row gone is left out."""
    alarm_ids = [ident for entity, ident in batch if entity is Entity.ALARM]
    alarms = await q.get_alarms(conn, alarm_ids) if alarm_ids else []
    messages = [
        (Entity.ALARM, orjson.dumps({"type": "alarm", "alarm": a.model_dump(mode="json")}))
        for a in urgent_first(alarms, alarm_ids)
    ]
    for entity, ident in batch:
        if entity is Entity.ESCALATION:
            escalation = await esc.get_escalation(conn, ident)
            if escalation is not None:
                body = escalation.model_dump(mode="json")
                messages.append((entity, orjson.dumps({"type": "escalation", "escalation": body})))
    return messages


class Ranked(Protocol):
    @property
    def alarm_id(self) -> uuid.UUID: ...
    @property
    def priority(self) -> int: ...


R = TypeVar("R", bound=Ranked)


def urgent_first(alarms: list[R], noted: list[uuid.UUID]) -> list[R]:
    """`alarms` by priority (1, a person's safety alarm, first), then in the order their
    changes were noted: in a burst of technical alarms a safety alarm is not sent last."""
    order = {ident: n for n, ident in enumerate(noted)}
    return sorted(alarms, key=lambda a: (a.priority, order.get(a.alarm_id, len(order))))


async def snapshot(pool: AsyncConnectionPool, principal: Principal) -> list[bytes]:
    messages: list[bytes] = []
    async with pool.connection() as conn:
        if principal.may(Permission.ALARMS_READ):
            alarms = await q.list_alarms(conn, state="open", limit=5000)
            body = [a.model_dump(mode="json") for a in alarms]
            messages.append(orjson.dumps({"type": "snapshot.alarms", "alarms": body}))
        if principal.may(Permission.ESCALATIONS_READ):
            rows = await esc.list_escalations(conn, state="open", limit=5000)
            body = [e.model_dump(mode="json") for e in rows]
            messages.append(orjson.dumps({"type": "snapshot.escalations", "escalations": body}))
    return messages


def _token_of(ws: WebSocket) -> tuple[str | None, bool]:
    """The bearer token and whether it came in a subprotocol."""
    header = ws.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    for proto in ws.scope.get("subprotocols", []):
        if proto.startswith("bearer."):
            return proto[len("bearer.") :], True
    return None, False


@router.websocket("/api/v1/stream")
async def stream(ws: WebSocket) -> None:
    """Live queue: `snapshot.alarms` / `snapshot.escalations` first, then `alarm` and
    `escalation` messages as they change (each the full current row)."""
    token, via_subprotocol = _token_of(ws)
    try:
        principal = await authenticate(ws, token)
        if not principal.may(Permission.STREAM):
            raise ApiError(status=403, code="forbidden", message="this role has no live stream")
    except ApiError as exc:
        await ws.send_denial_response(
            JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status)
        )
        return
    hub: ChangeHub = ws.app.state.hub
    client = StreamClient(principal=principal)
    await ws.accept(subprotocol=SUBPROTOCOL if via_subprotocol else None)
    hub.add(client)
    metrics = ws.app.state.api_metrics
    metrics.stream_clients.inc()
    try:
        for message in await snapshot(ws.app.state.pool, principal):
            await ws.send_text(message.decode())
        await _pump(ws, client, token or "")
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.remove(client)
        metrics.stream_clients.dec()


async def _pump(ws: WebSocket, client: StreamClient, token: str) -> None:
    """Send what the hub queues until the client goes away, falls too far behind, or its
    token is revoked or expires (checked every token_cache_s, as every request is)."""
    reader = asyncio.create_task(_drain_incoming(ws))
    watcher = asyncio.create_task(_until_invalid(ws, token))
    try:
        while not reader.done():
            getter = asyncio.create_task(client.queue.get())
            done, _ = await asyncio.wait(
                {getter, reader, watcher}, return_when=asyncio.FIRST_COMPLETED
            )
            if watcher in done:
                getter.cancel()
                await ws.close(code=POLICY_VIOLATION, reason="the token is no longer valid")
                return
            if getter not in done:
                getter.cancel()
                return
            queued = getter.result()
            if queued is None:
                await ws.close(code=1013, reason="too slow; reconnect")
                return
            started = time.perf_counter()
            await ws.send_text(queued.decode())
            _slow("sending to a client", started)
    finally:
        reader.cancel()
        watcher.cancel()


async def _until_invalid(ws: WebSocket, token: str) -> None:
    """Return once the stream's token is no longer valid (revoked, expired)."""
    cache: TokenCache = ws.app.state.tokens
    every = min(max(ws.app.state.settings.token_cache_s, 0.5), 5.0)
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(psycopg.Error, PoolTimeout):  # the database away: keep going
            if await cache.lookup(ws.app.state.pool, token) is None:
                return


async def _drain_incoming(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await ws.receive_text()
