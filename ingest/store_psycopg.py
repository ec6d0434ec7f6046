"""Write batches of events and dead letters to PostgreSQL/TimescaleDB in one transaction.

A batch is COPYed into a temporary staging table (a batch of one event, the alarm lane's, goes
as the statement's parameters instead), then one statement inserts the ids that are new into
`event_ids`, those events into the `events` hypertable and into the temporary table `ingest_new`
(the batch's new events, for set-based work), and returns counts per kind. Effects
that must happen exactly once per event (alarms, device state) run in the same transaction
through `Processor`s: in SQL over `ingest_new` for the bulk (device liveness), and in Python
for the notable events (every kind but heartbeats). The caller acknowledges the messages only
after `write` returns.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
from psycopg.types.json import Jsonb, set_json_dumps

from ingest.parse import DeadLetter
from larmkedja.db import Conn, Cursor
from larmkedja.db_connect import DEFAULT_DEADLINE_S, connect
from larmkedja.events import ReceivedEvent, json_bytes

log = logging.getLogger(__name__)

# The batch's rows as COPY writes them, and its new events for set-based work: the columns of
# `events` (migration 0001), emptied at every commit.
CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS ingest_staging (LIKE events) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_new (LIKE events) ON COMMIT DELETE ROWS;
"""

# Binary COPY: PostgreSQL reads times and ids without parsing text, and psycopg's C dumpers
# write them (a third less CPU on each side than text, measured per event in the drain).
COPY_STAGING = (
    "COPY ingest_staging (received_at, event_id, site, device_id, kind, device_ts, data)"
    " FROM STDIN (FORMAT BINARY)"
)
STAGING_TYPES = ("timestamptz", "uuid", "text", "text", "text", "timestamptz", "jsonb")

# Sorted by event_id so that two ingest processes meeting the same ids lock them in one order.
# `{batch}` is where the batch's rows come from: the staging table that COPY filled, or, for a
# batch of one event (the alarm lane's), the statement's own parameters.
_INSERT_NEW = """
WITH batch AS ({batch}), fresh AS (
    INSERT INTO event_ids (event_id, received_at)
    SELECT event_id, received_at FROM batch ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), stored AS (
    INSERT INTO events (received_at, event_id, site, device_id, kind, device_ts, data)
    SELECT b.received_at, b.event_id, b.site, b.device_id, b.kind, b.device_ts, b.data
    FROM batch b JOIN fresh f USING (event_id)
    RETURNING *
), kept AS (
    INSERT INTO ingest_new SELECT * FROM stored RETURNING event_id, kind
)
SELECT kind, count(*), array_agg(event_id) FILTER (WHERE kind <> 'heartbeat') FROM kept
GROUP BY kind
"""
INSERT_NEW_EVENTS = _INSERT_NEW.format(
    batch="""
    SELECT DISTINCT ON (event_id) *
    FROM ingest_staging
    ORDER BY event_id, received_at
"""
)
# One event in one statement: COPY is two round trips to the server (its start, then its data)
# before the insert's own, and under load each round trip waits for a core on both sides; an
# alarm, written alone, is committed that much sooner (docs/bench.md, 2026-12-08).
INSERT_ONE_EVENT = _INSERT_NEW.format(
    batch="""
    SELECT %s::timestamptz AS received_at, %s::uuid AS event_id, %s::text AS site,
           %s::text AS device_id, %s::text AS kind, %s::timestamptz AS device_ts,
           %s::jsonb AS data
"""
)


def _columns(r: ReceivedEvent) -> tuple[object, ...]:
    """An event's values in the staging table's column order (`COPY_STAGING`, `STAGING_TYPES`,
    `INSERT_ONE_EVENT`'s parameters), `data` last."""
    e = r.event
    return (r.received_at, e.event_id, r.site, e.device_id, e.kind, e.ts, e.data)


COPY_DEAD_LETTERS = (
    "COPY dead_letters (received_at, topic, site, reason, detail, payload_head) FROM STDIN"
)


class Processor(Protocol):
    """Work done once per newly stored event, inside the ingest transaction."""

    def process(self, cur: Cursor, notable: Sequence[ReceivedEvent]) -> None:
        """Apply the effects of this batch's new events. `notable` holds the new events of
        every kind but heartbeats, in the order received; all new events, heartbeats too, are
        in the temporary table `ingest_new` for set-based SQL."""


@dataclass(slots=True, kw_only=True)
class WriteResult:
    stored: Counter[str] = field(default_factory=Counter)  # new events per kind
    notable: list[ReceivedEvent] = field(default_factory=list)  # new, not heartbeats
    duplicates: int = 0


class EventStore:
    """Owns one connection; not thread-safe (one writer thread uses it)."""

    def __init__(
        self,
        *,
        conninfo: str,
        processors: Sequence[Processor] = (),
        deadline_s: float = DEFAULT_DEADLINE_S,
    ) -> None:
        self._conninfo = conninfo
        self._deadline_s = deadline_s
        self._processors = list(processors)
        self._conn: Conn | None = None

    def connect(self) -> None:
        if self._conn is not None and not self._conn.closed:
            return
        # A deadline on every statement: a hung primary fails the batch, which is retried.
        conn = connect(self._conninfo, deadline_s=self._deadline_s, autocommit=False)
        set_json_dumps(json_bytes, context=conn)  # `data` as the event model writes it
        conn.execute(CREATE_STAGING)
        conn.commit()
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self.connect()
        if self._conn is None:  # pragma: no cover - connect() either sets it or raises
            raise psycopg.InterfaceError("no connection")
        return self._conn

    def write(self, events: Sequence[ReceivedEvent], dead: Sequence[DeadLetter]) -> WriteResult:
        """Store one batch in one transaction; raises psycopg.Error with nothing committed."""
        conn = self.connection
        result = WriteResult()
        try:
            with conn.cursor() as cur:
                if events:
                    result = self._write_events(cur, events)
                    self._process(cur, result)
                if dead:
                    self._write_dead(cur, dead)
            conn.commit()
        except BaseException:
            if not conn.closed:
                conn.rollback()
            raise
        return result

    def _process(self, cur: Cursor, result: WriteResult) -> None:
        if result.stored:
            for processor in self._processors:
                processor.process(cur, result.notable)

    def _write_events(self, cur: Cursor, events: Sequence[ReceivedEvent]) -> WriteResult:
        if len(events) == 1:
            *columns, data = _columns(events[0])
            cur.execute(INSERT_ONE_EVENT, (*columns, Jsonb(data)))
        else:
            with cur.copy(COPY_STAGING) as copy:
                copy.set_types(STAGING_TYPES)
                write = copy.write_row
                for r in events:
                    write(_columns(r))
            cur.execute(INSERT_NEW_EVENTS)
        stored: Counter[str] = Counter()
        notable_ids: set[object] = set()
        for kind, count, ids in cur.fetchall():
            stored[kind] = count
            notable_ids.update(ids or ())
        notable: list[ReceivedEvent] = []
        if notable_ids:
            for r in events:
                if r.event.event_id in notable_ids:
                    notable.append(r)
                    notable_ids.discard(r.event.event_id)  # a repeat inside the batch
        return WriteResult(
            stored=stored, notable=notable, duplicates=len(events) - sum(stored.values())
        )

    def _write_dead(self, cur: Cursor, dead: Sequence[DeadLetter]) -> None:
        with cur.copy(COPY_DEAD_LETTERS) as copy:
            for d in dead:
                copy.write_row(
                    (d.received_at, d.topic, d.site, d.reason.value, d.detail, d.payload_head)
                )

    def find_unstorable(self, events: Sequence[ReceivedEvent]) -> list[int]:
        """Indexes of events that fail on their own: each is tried alone in a savepoint, and
        everything is rolled back. Used only after a batch failed with a data error."""
        conn = self.connection
        bad: list[int] = []
        try:
            with conn.cursor() as cur:
                for i, received in enumerate(events):
                    cur.execute("SAVEPOINT probe")
                    try:
                        cur.execute("DELETE FROM ingest_staging; DELETE FROM ingest_new")
                        self._process(cur, self._write_events(cur, [received]))
                        cur.execute("RELEASE SAVEPOINT probe")
                    except (psycopg.OperationalError, psycopg.InterfaceError):
                        raise
                    except Exception:  # refused by PostgreSQL, or by our own serialisation
                        cur.execute("ROLLBACK TO SAVEPOINT probe")
                        bad.append(i)
        finally:
            if not conn.closed:
                conn.rollback()
        return bad
