"""A batch of one event (the alarm lane writes each alarm alone) is stored by one statement
instead of COPY's two round trips and the insert's third, and stores what COPY stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from entrypoints.bootstrap import processors
from ingest.store_psycopg import EventStore
from larmkedja.events import Kind, ReceivedEvent
from tests.helpers import make_event, settings_for

pytestmark = pytest.mark.integration

COLUMNS = "received_at, site, device_id, kind, device_ts, data"


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    s = settings_for(database_url, "127.0.0.1", 1)
    made = EventStore(conninfo=database_url, processors=processors(s))
    try:
        yield made
    finally:
        made.close()


def _received(device: str, kind: Kind, data: dict[str, Any] | None = None) -> ReceivedEvent:
    at = datetime.now(UTC)
    event = make_event(device, kind, data, ts=at - timedelta(seconds=2))
    return ReceivedEvent(site="one", event=event, received_at=at)


def _row(database_url: str, received: ReceivedEvent) -> tuple[Any, ...]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            f"SELECT {COLUMNS} FROM events WHERE event_id = %s",  # noqa: S608 - our own columns
            (received.event.event_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_one_event_is_stored_as_copy_stores_it(database_url: str, store: EventStore) -> None:
    data = {"text": 'Åsa ♥ "q" \\ \t', "n": 10**20, "f": 0.1, "nested": [None, True, {}]}
    alone = _received("one-1", Kind.ALARM_BUTTON, data)
    copied = ReceivedEvent(
        site="one",
        event=make_event("one-1", Kind.ALARM_BUTTON, data, ts=alone.event.ts),
        received_at=alone.received_at,
    )
    assert sum(store.write([alone], []).stored.values()) == 1
    assert sum(store.write([copied, _received("one-2", Kind.HEARTBEAT)], []).stored.values()) == 2
    assert _row(database_url, alone) == _row(database_url, copied)


def test_one_event_again_is_a_duplicate_and_raises_nothing(
    database_url: str, store: EventStore
) -> None:
    press = _received("one-3", Kind.ALARM_FALL)
    first = store.write([press], [])
    again = store.write([press], [])
    assert first.stored == {Kind.ALARM_FALL.value: 1} and len(first.notable) == 1
    assert sum(again.stored.values()) == 0 and again.duplicates == 1 and not again.notable
    with psycopg.connect(database_url) as conn:
        alarms = conn.execute("SELECT count(*) FROM alarms WHERE device_id = 'one-3'").fetchone()
    assert alarms == (1,)


def test_one_event_is_one_statement_before_the_processors(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    execute, copy = psycopg.Cursor.execute, psycopg.Cursor.copy

    def counted_execute(self: psycopg.Cursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
        sent.append(str(query))
        return execute(self, query, *args, **kw)

    def counted_copy(self: psycopg.Cursor[Any], statement: Any, *args: Any, **kw: Any) -> Any:
        sent.append(str(statement))
        return copy(self, statement, *args, **kw)

    store.write([_received("one-4", Kind.HEARTBEAT)], [])  # the device known, the table made
    monkeypatch.setattr(psycopg.Cursor, "execute", counted_execute)
    monkeypatch.setattr(psycopg.Cursor, "copy", counted_copy)
    store.write([_received("one-4", Kind.ALARM_BUTTON)], [])
    # The event's statement, then the processors' (liveness, the alarm): no COPY.
    assert not any(s.lstrip().startswith("COPY") for s in sent)
    assert len(sent) == 3
