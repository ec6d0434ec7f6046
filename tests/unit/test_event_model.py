"""The event model: one definition, its published JSON Schema kept in step."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from larmkedja.events import (
    DATA_MODELS,
    DeviceEvent,
    Kind,
    ReceivedEvent,
    _plainly_valid,
    event_json_schema,
    json_bytes,
    received,
)
from tests.helpers import make_event

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "event-v1.schema.json"


def test_published_json_schema_is_generated_from_the_model() -> None:
    expected = json.dumps(event_json_schema(), indent=2, sort_keys=True) + "\n"
    assert SCHEMA_FILE.read_text() == expected, "docs/ is stale: run `make schema`"


def test_schema_lists_every_kind() -> None:
    schema = event_json_schema()
    kinds = set(schema["$defs"]["Kind"]["enum"])
    assert kinds == {k.value for k in Kind}


def test_wire_form_round_trips() -> None:
    event = make_event("d-1", Kind.BATTERY_REPORT, {"percent": 55.5, "on_mains": False, "x": 1})
    assert DeviceEvent.model_validate_json(event.to_json()) == event


def test_every_alarm_kind_but_cancel_is_an_alarm() -> None:
    alarms = {k for k in Kind if k.is_alarm}
    assert alarms == {k for k in Kind if k.value.startswith("alarm.")} - {Kind.ALARM_CANCEL}


# The keys the data models name, and values of every JSON type around their limits.
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**7),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=140),
    st.sampled_from([k.value for k in Kind] + ["", "x" * 128, "x" * 129, "alarm.nope"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
KEYS = st.sampled_from(
    ["interval_s", "component", "alarm_kind", "percent", "on_mains", "plan_id", "outcome",
     "protocol", "code", "zone", "area", "x"]
)  # fmt: skip


@settings(max_examples=2000)
@given(st.sampled_from(list(Kind)), st.dictionaries(KEYS, VALUES, max_size=4))
def test_data_taken_as_plainly_valid_is_valid_for_its_model(
    kind: Kind, data: dict[str, Any]
) -> None:
    """The shortcut that skips a kind's data model (the gateway's and ingest's hot path) says
    yes only where the model says yes."""
    if _plainly_valid(kind, data):
        model = DATA_MODELS.get(kind)
        if model is not None:
            model.model_validate(data, strict=False)  # raises if the shortcut was wrong


def test_the_gateways_events_skip_the_data_model() -> None:
    assert _plainly_valid(Kind.HEARTBEAT, {"protocol": "sia-dc09", "code": "RP", "zone": "1"})
    assert _plainly_valid(Kind.ALARM_FALL, {"protocol": "scaip", "component": "zone 1"})
    assert _plainly_valid(Kind.ALARM_CANCEL, {"code": "OR", "alarm_kind": "alarm.button"})
    assert not _plainly_valid(Kind.ALARM_FALL, {"component": "x" * 129})
    assert not _plainly_valid(Kind.HEARTBEAT, {"interval_s": 0})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=500)
@given(
    st.sampled_from(list(Kind)),
    st.dictionaries(st.text(max_size=8), JSON, max_size=4),
    st.datetimes(
        min_value=datetime(1900, 1, 2),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(UTC) | st.timezones(),
    ),
)
def test_the_wire_form_is_pydantics_dump_byte_for_byte(
    kind: Kind, data: dict[str, Any], ts: datetime
) -> None:
    event = DeviceEvent.model_construct(
        v=1, event_id=uuid.uuid4(), device_id="d-1", ts=ts, kind=kind, data=data
    )
    assert event.to_json() == json_bytes(event.model_dump(mode="json"))


def test_received_is_the_dataclass_made_faster() -> None:
    event = make_event("d-1")
    at = datetime(2026, 12, 8, tzinfo=UTC)
    made = received("solna", event, at)
    assert made == ReceivedEvent(site="solna", event=event, received_at=at)
    assert type(made) is ReceivedEvent and (made.site, made.event, made.received_at) == (
        "solna",
        event,
        at,
    )
