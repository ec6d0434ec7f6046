"""Bearer tokens and roles. Only a SHA-256 of each token is stored (tokens are 256-bit random,
so a fast hash is enough); the role matrix below is enforced on every /api/v1 route."""

from __future__ import annotations

import enum
import hashlib
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool
from starlette.requests import HTTPConnection

from alarms.people.audit_psycopg import Actor
from api.errors import ApiError
from api.metrics import ApiMetrics

TOKEN_PREFIX = "lk_"  # noqa: S105 - a prefix, not a secret


class Role(enum.StrEnum):
    OPERATOR = "operator"
    PATROL = "patrol"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Permission(enum.StrEnum):
    ALARMS_READ = "alarms.read"
    ALARMS_ACT = "alarms.act"
    KPI_READ = "kpi.read"
    REPORTS_READ = "reports.read"
    DEVICES_READ = "devices.read"
    DEVICES_ADMIN = "devices.admin"
    ESCALATIONS_READ = "escalations.read"
    ESCALATIONS_WORK = "escalations.work"
    ESCALATIONS_CANCEL = "escalations.cancel"
    SUPERVISION_READ = "supervision.read"
    PLANS_WRITE = "plans.write"
    CASE_READ = "case.read"
    CASE_NOTE = "case.note"
    PERSONS_READ = "persons.read"
    PERSONS_WRITE = "persons.write"
    ABSENCES_WRITE = "absences.write"
    HANDOVER_WRITE = "handover.write"
    HANDOVER_WORK = "handover.work"
    FOLLOW_UP = "persons.follow_up"
    TOKENS_ADMIN = "tokens.admin"
    STREAM = "stream"


_O, _P, _S, _A = Role.OPERATOR, Role.PATROL, Role.SUPERVISOR, Role.ADMIN

# The role matrix (docs/api.md shows it as a table; a test walks every route against it).
ROLES: dict[Permission, frozenset[Role]] = {
    Permission.ALARMS_READ: frozenset({_O, _S}),
    Permission.ALARMS_ACT: frozenset({_O, _S}),
    Permission.KPI_READ: frozenset({_O, _S}),
    Permission.REPORTS_READ: frozenset({_S}),
    Permission.DEVICES_READ: frozenset({_O, _S, _A}),
    Permission.DEVICES_ADMIN: frozenset({_A}),
    Permission.ESCALATIONS_READ: frozenset({_O, _P, _S}),
    Permission.ESCALATIONS_WORK: frozenset({_P, _S}),
    Permission.ESCALATIONS_CANCEL: frozenset({_S}),
    Permission.SUPERVISION_READ: frozenset({_O, _S}),
    Permission.PLANS_WRITE: frozenset({_S}),
    # The case of an alarm: the operator's and the patrol's record (notes from both).
    Permission.CASE_READ: frozenset({_O, _P, _S}),
    Permission.CASE_NOTE: frozenset({_O, _P, _S}),
    Permission.PERSONS_READ: frozenset({_S, _A}),
    Permission.PERSONS_WRITE: frozenset({_A}),
    # A person away (hospital, travel): home care's supervisor or the registry's admin.
    Permission.ABSENCES_WRITE: frozenset({_S, _A}),
    # Hand-over notes: the day team leaves one (through the alarm centre or its supervisor);
    # the night patrol reads and acknowledges them.
    Permission.HANDOVER_WRITE: frozenset({_O, _S}),
    Permission.HANDOVER_WORK: frozenset({_P, _S}),
    # A person marked "follow up" at the alarm centre, listed at the shift change until done.
    Permission.FOLLOW_UP: frozenset({_O, _S}),
    Permission.TOKENS_ADMIN: frozenset({_A}),
    Permission.STREAM: frozenset({_O, _P, _S}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    token_id: uuid.UUID
    name: str
    role: Role

    def may(self, permission: Permission) -> bool:
        return self.role in ROLES[permission]

    @property
    def actor(self) -> Actor:
        """As the audit log records who did something."""
        return Actor(name=self.name, role=self.role.value)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


SQL_LOOKUP = """
SELECT token_id, name, role FROM api_tokens
WHERE token_hash = %s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
"""
SQL_INSERT = """
INSERT INTO api_tokens (name, role, token_hash, expires_at)
VALUES (%s, %s, %s, now() + make_interval(days => %s))
RETURNING token_id
"""
SQL_INSERT_NO_EXPIRY = """
INSERT INTO api_tokens (name, role, token_hash) VALUES (%s, %s, %s) RETURNING token_id
"""


class TokenCache:
    """Valid tokens for a few seconds, so a revocation takes effect within `ttl_s`."""

    def __init__(self, *, ttl_s: float) -> None:
        self._ttl_s = ttl_s
        self._entries: dict[bytes, tuple[float, Principal | None]] = {}

    async def lookup(self, pool: AsyncConnectionPool, token: str) -> Principal | None:
        digest = hash_token(token)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with pool.connection() as conn:
            cur = await conn.execute(SQL_LOOKUP, (digest,))
            row = await cur.fetchone()
        principal = Principal(token_id=row[0], name=str(row[1]), role=Role(row[2])) if row else None
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (now + self._ttl_s, principal)
        return principal


class FailureLimiter:
    """Failed sign-ins per client address in the last minute; over the limit: 429."""

    def __init__(self, *, per_minute: int) -> None:
        self._per_minute = per_minute
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > 60.0:
            times.popleft()
        return times

    def blocked(self, key: str) -> bool:
        return len(self._recent(key, time.monotonic())) >= self._per_minute

    def record(self, key: str) -> None:
        if len(self._failures) > 10_000:
            self._failures.clear()
        self._recent(key, time.monotonic()).append(time.monotonic())


_bearer = HTTPBearer(auto_error=False, description="A token from `larmkedja token create`.")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def authenticate(request: HTTPConnection, token: str | None) -> Principal:
    """The token is checked first: a valid token always passes, so that bad tokens sent from
    one address (a NAT shared by every operator of a centre) cannot lock out the good ones.
    Only failures are counted, and only failures are answered 429 once over the limit."""
    metrics: ApiMetrics = request.app.state.api_metrics
    if not token:
        metrics.auth_failures.labels("missing").inc()
        raise ApiError(status=401, code="unauthenticated", message="a Bearer token is required")
    cache: TokenCache = request.app.state.tokens
    principal = await cache.lookup(request.app.state.pool, token)
    if principal is not None:
        return principal
    limiter: FailureLimiter = request.app.state.failures
    client = request.client.host if request.client else "unknown"
    if limiter.blocked(client):
        metrics.auth_failures.labels("rate_limited").inc()
        raise ApiError(
            status=429, code="too_many_failures", message="too many failed sign-ins; wait a minute"
        )
    limiter.record(client)
    metrics.auth_failures.labels("invalid").inc()
    raise ApiError(status=401, code="unauthenticated", message="the token is not valid")


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the caller's principal, if its role has `permission`."""

    async def dependency(request: Request, credentials: BearerCredentials) -> Principal:
        principal: Principal = await authenticate(
            request, credentials.credentials if credentials else None
        )
        if not principal.may(permission):
            request.app.state.api_metrics.auth_failures.labels("forbidden").inc()
            raise ApiError(
                status=403,
                code="forbidden",
                message=f"the {principal.role.value} role may not do this ({permission.value})",
            )
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency
