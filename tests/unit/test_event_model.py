"""The event model: one definition, its published JSON Schema kept in step."""

from __future__ import annotations

import json
from pathlib import Path

from larmkedja.events import DeviceEvent, Kind, event_json_schema
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
