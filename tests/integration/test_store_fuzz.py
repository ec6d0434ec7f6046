"""Whatever the parser accepts, the database stores: no valid event is a poison pill."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.parse import parse
from ingest.store_psycopg import EventStore
from larmkedja.events import Kind, ReceivedEvent
from tests.helpers import make_event

pytestmark = pytest.mark.integration

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.dictionaries(st.text(max_size=12), json_values, max_size=5),
    device=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    kind=st.sampled_from([k for k in Kind if k not in (Kind.BATTERY_REPORT, Kind.CHECK_RESULT)]),
)
def test_every_event_the_parser_accepts_is_stored(
    database_url: str, data: dict[str, Any], device: str, kind: Kind
) -> None:
    event = make_event(device, kind, data)
    result = parse(
        topic=event.topic("fuzz"), payload=event.to_json(), received_at=datetime.now(UTC)
    )
    if not isinstance(result, ReceivedEvent):
        return  # the parser refused it (a dead letter): nothing to store
    # Alone (the alarm lane's one-event statement) and in a batch (COPY): both must store it.
    twin = ReceivedEvent(
        site="fuzz",
        event=make_event(device, kind, result.event.data, ts=result.event.ts),
        received_at=result.received_at,
    )
    store = EventStore(conninfo=database_url)
    try:
        alone = store.write([result], [])
        other = ReceivedEvent(site="fuzz", event=make_event(device), received_at=twin.received_at)
        batched = store.write([twin, other], [])
    finally:
        store.close()
    assert sum(alone.stored.values()) == 1
    assert sum(batched.stored.values()) == 2
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT a.data, a.data = b.data FROM events a, events b"
            " WHERE a.event_id = %s AND b.event_id = %s",
            (event.event_id, twin.event.event_id),
        ).fetchone()
    assert rows is not None and numbers_as_floats(rows[0]) == numbers_as_floats(result.event.data)
    assert rows[1], "the two ways of writing stored different data"


def numbers_as_floats(value: Any) -> Any:
    """jsonb keeps a JSON number as its decimal text; compare numbers by value."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [numbers_as_floats(v) for v in value]
    return {k: numbers_as_floats(v) for k, v in value.items()}
