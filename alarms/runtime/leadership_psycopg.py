"""Exactly one engine owns the deadlines: elected through PostgreSQL, fenced by an epoch.

The owner holds a session-level advisory lock on a connection of its own (the lock session).
Whoever takes the lock raises the epoch in `engine_leadership` (migration 0016) and leads with
that epoch; every transaction of its sweeps and of the outbox first takes the row FOR SHARE
with that epoch (`fence`). A new owner's raise therefore waits for the old owner's transaction
in flight, and after it no transaction of the old owner changes anything: a deposed engine
that wakes from a hang finds another epoch and steps down (`Deposed`).

The lock is free when the lock session ends: at once when the engine dies (its kernel closes
the socket), and for a hung engine (SIGSTOP, a frozen VM) when the server ends the session
after `lease_s` without a statement (`idle_session_timeout`); a transaction it left open ends
the same way (`idle_in_transaction_session_timeout`, set on its working connection by the
engine). The owner says a word on the lock session every tick and as it enters each of its
transactions (`fence`): a tick longer than the lease is no hang when each transaction is slow
(a slow disk: every commit waits for its flush; make test-ha), and must not lose the lock. A
standby tries the lock every tick, so it takes over within `lease_s` plus a tick of a hang,
and within a tick of a death.

After a database failover the new primary holds no advisory locks: every engine reconnects,
one takes the lock, and its raise of the (replicated) epoch fences out the rest.
"""

from __future__ import annotations

import logging
import time

import psycopg

from larmkedja import db_connect
from larmkedja.db import Conn

log = logging.getLogger(__name__)

LOCK_KEY = 0x6C61726D_656E67  # "larm" "eng": the engine's lock, in every larmkedja database
TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"
# Waits at most a moment for the old owner's transaction in flight (it holds the row FOR SHARE).
RAISE_EPOCH = """
UPDATE engine_leadership SET epoch = epoch + 1, instance = %s, elected_at = now()
RETURNING epoch
"""
FENCE = "SELECT 1 FROM engine_leadership WHERE epoch = %s FOR SHARE"
PING = "SELECT 1"


class Deposed(RuntimeError):
    """Another engine was elected since this one was: it must change nothing more."""


class Leadership:
    """The lock session and the epoch of one engine. Not thread-safe: the engine's loop owns
    it."""

    def __init__(self, *, conninfo: str, instance: str, lease_s: float, deadline_s: float) -> None:
        self._conninfo = conninfo
        self._instance = instance
        self._lease_ms = max(1000, int(lease_s * 1000))
        # A word on the lock session at most this often: enough to keep the lease, without a
        # round trip before every one of a tick's transactions.
        self._word_every_s = self._lease_ms / 4000
        self._last_word = 0.0
        self._deadline_s = deadline_s
        self._session: Conn | None = None
        self._locked = False
        self.epoch: int | None = None

    @property
    def leading(self) -> bool:
        return self.epoch is not None

    def hold(self) -> bool:
        """Once a tick: keep the lock session alive, or try to take the lock; True while this
        engine leads. A lock session the server ended (the lease ran out while this engine
        hung) is given up and a new one tries again; a database that does not answer at all
        raises (the engine reconnects)."""
        had_session = self._session is not None and not self._session.closed
        try:
            return self._hold()
        except psycopg.Error as exc:
            self.release()
            if not had_session:
                raise
            log.warning("engine %s lost its lock session (%s)", self._instance, exc)
        try:
            return self._hold()
        except psycopg.Error:
            self.release()
            raise

    def _hold(self) -> bool:
        session = self._connect()
        if self._locked:
            self._say_a_word(session)
        else:
            row = session.execute(TRY_LOCK, (LOCK_KEY,)).fetchone()
            self._locked = bool(row and row[0])
        if self._locked and self.epoch is None:
            self._take_office(session)
        return self.leading

    def _take_office(self, session: Conn) -> None:
        try:
            with session.transaction():
                session.execute("SET LOCAL lock_timeout = '1s'")
                row = session.execute(RAISE_EPOCH, (self._instance,)).fetchone()
        except psycopg.errors.LockNotAvailable:
            log.info("elected; the previous owner's last transaction is still open")
            return  # keep the lock, raise the epoch next tick
        self.epoch = int(row[0]) if row else None
        log.warning("engine %s owns the deadlines now (epoch %s)", self._instance, self.epoch)

    def fence(self, conn: Conn) -> None:
        """In the caller's transaction, before it changes anything: still the owner? And a
        word on the lock session unless one was said within a quarter of the lease, so that
        the lease runs from about this transaction on."""
        self._renew()
        if self.epoch is None or conn.execute(FENCE, (self.epoch,)).fetchone() is None:
            raise Deposed(f"engine {self._instance} was deposed (epoch {self.epoch})")

    def _renew(self) -> None:
        """A lock session the server ended (the lease ran out) means the lock is gone."""
        if self.epoch is None:
            return  # the fence says Deposed
        try:
            if self._session is None or self._session.closed:
                raise psycopg.OperationalError("closed")
            if time.monotonic() - self._last_word >= self._word_every_s:
                self._say_a_word(self._session)
        except psycopg.Error as exc:
            self.release()
            raise Deposed(f"engine {self._instance} lost its lock session ({exc})") from exc

    def _say_a_word(self, session: Conn) -> None:
        session.execute(PING)
        self._last_word = time.monotonic()

    def step_down(self) -> None:
        if self.epoch is not None:
            log.warning("engine %s deposed (epoch %s); standing by", self._instance, self.epoch)
        self.release()

    def release(self) -> None:
        """Give the lock up (by ending its session) and forget the epoch."""
        self.epoch = None
        self._locked = False
        if self._session is not None and not self._session.closed:
            self._session.close()
        self._session = None

    def _connect(self) -> Conn:
        if self._session is None or self._session.closed:
            self._locked = False
            self.epoch = None
            self._session = db_connect.connect(
                self._conninfo, deadline_s=self._deadline_s, autocommit=True
            )
            self._session.execute(f"SET idle_session_timeout = {self._lease_ms}".encode())
        return self._session
