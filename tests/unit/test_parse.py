"""The payload parser: every contract §1 rule has its dead-letter reason; nothing escapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.parse import (
    PAYLOAD_HEAD_BYTES,
    DeadLetter,
    Reason,
    parse,
    parse_topic,
    surely_storable,
)
from larmkedja.events import Kind, ReceivedEvent

NOW = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
TOPIC = "larm/v1/solna/d-000123/events"


def payload(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "event_id": "0b6f8a64-2d4e-4c36-9a53-3f0f8e1f5a10",
        "device_id": "d-000123",
        "ts": "2026-11-23T22:01:05.120+01:00",
        "kind": "alarm.button",
        "data": {},
    }
    for key, value in changes.items():
        if value is ...:
            base.pop(key)
        else:
            base[key] = value
    return base


def encode(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def run(raw: bytes, topic: str = TOPIC) -> ReceivedEvent | DeadLetter:
    return parse(topic=topic, payload=raw, received_at=NOW)


def test_a_valid_event_is_parsed_with_its_site() -> None:
    result = run(encode(payload(data={"component": "wrist", "extra": [1, 2]})))
    assert isinstance(result, ReceivedEvent)
    assert result.site == "solna"
    assert result.event.kind is Kind.ALARM_BUTTON
    assert result.event.data == {"component": "wrist", "extra": [1, 2]}  # unknown keys kept
    assert result.event.ts.utcoffset() is not None
    assert result.received_at == NOW


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe{}", Reason.NOT_UTF8),
        (b"{not json", Reason.NOT_JSON),
        (b"", Reason.NOT_JSON),
        (encode(payload(data={"x": float("nan")})).replace(b"NaN", b"NaN"), Reason.NOT_JSON),
        (b"[1, 2]", Reason.NOT_OBJECT),
        (b'"a string"', Reason.NOT_OBJECT),
        (encode(payload(v=2)), Reason.BAD_VERSION),
        (encode(payload(v="1")), Reason.BAD_VERSION),
        (encode(payload(event_id=...)), Reason.MISSING_FIELD),
        (encode(payload(ts=...)), Reason.MISSING_FIELD),
        (encode(payload(kind=...)), Reason.MISSING_FIELD),
        (encode(payload(kind="alarm.teleport")), Reason.UNKNOWN_KIND),
        (encode(payload(device_id=123)), Reason.WRONG_TYPE),
        (encode(payload(data=[1])), Reason.WRONG_TYPE),
        (encode(payload(event_id="not-a-uuid")), Reason.BAD_EVENT_ID),
        (encode(payload(ts="2026-11-23T22:01:05")), Reason.BAD_TIMESTAMP),  # no offset
        (encode(payload(ts="yesterday")), Reason.BAD_TIMESTAMP),
        (encode(payload(ts=1795471265)), Reason.BAD_TIMESTAMP),
        (encode(payload(ts="2026-02-30T10:00:00Z")), Reason.BAD_TIMESTAMP),
        (encode(payload(device_id="d-999")), Reason.DEVICE_MISMATCH),
        (encode(payload(kind="battery.report", data={})), Reason.BAD_DATA),
        (encode(payload(kind="battery.report", data={"percent": 101})), Reason.BAD_DATA),
        (encode(payload(kind="check.result", data={"plan_id": "p"})), Reason.BAD_DATA),
        (encode(payload(data={"note": "a\u0000b"})), Reason.UNSUPPORTED_CONTENT),
        (encode(payload(data={"pad": "x" * 9000})), Reason.PAYLOAD_TOO_LARGE),
    ],
)
def test_each_broken_rule_is_a_dead_letter_with_its_reason(raw: bytes, reason: Reason) -> None:
    result = run(raw)
    assert isinstance(result, DeadLetter), result
    assert result.reason is reason, (result.reason, result.detail)
    assert len(result.payload_head) <= PAYLOAD_HEAD_BYTES
    assert result.payload_head == raw[:PAYLOAD_HEAD_BYTES]
    assert result.site == "solna"


@pytest.mark.parametrize(
    "topic",
    [
        "larm/v1/Solna/d-1/events",  # site must be lower case
        "larm/v1/solna/d 1/events",
        "larm/v1//d-1/events",
        "larm/v1/solna/d-1/event",
        "larm/v2/solna/d-1/events",
        "larm/v1/" + "s" * 33 + "/d-1/events",
        "larm/v1/solna/" + "d" * 65 + "/events",
        "larm/v1/solna/d-1/events/extra",
    ],
)
def test_a_topic_outside_the_pattern_is_a_dead_letter(topic: str) -> None:
    result = run(encode(payload(device_id="d-1")), topic=topic)
    assert isinstance(result, DeadLetter)
    assert result.reason is Reason.BAD_TOPIC


def test_site_and_device_id_limits_are_inclusive() -> None:
    site, device = "s" * 32, "D_" + "d" * 62
    result = run(encode(payload(device_id=device)), topic=f"larm/v1/{site}/{device}/events")
    assert isinstance(result, ReceivedEvent)
    assert parse_topic(f"larm/v1/{site}/{device}/events") is not None


def test_a_payload_of_exactly_8_kib_is_accepted() -> None:
    raw = encode(payload(data={"pad": ""}))
    raw = encode(payload(data={"pad": "x" * (8192 - len(raw))}))
    assert len(raw) == 8192
    assert isinstance(run(raw), ReceivedEvent)


def test_check_result_data_is_typed() -> None:
    data = {
        "plan_id": "plan-7",
        "scheduled_for": "2026-11-23T22:00:00+01:00",
        "outcome": "not_seen",
        "operator": "op-12",
    }
    result = run(encode(payload(kind="check.result", data=data)))
    assert isinstance(result, ReceivedEvent)
    typed = result.event.typed_data()
    assert typed.outcome == "not_seen"  # type: ignore[attr-defined]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_never_escape_as_an_exception(raw: bytes) -> None:
    result = run(raw)
    assert isinstance(result, DeadLetter | ReceivedEvent)


@settings(max_examples=400, deadline=None)
@given(
    changes=st.dictionaries(
        st.sampled_from(["v", "event_id", "device_id", "ts", "kind", "data", "other"]),
        json_values,
        max_size=4,
    ),
    topic=st.text(max_size=60) | st.just(TOPIC),
)
def test_mutated_payloads_are_events_or_dead_letters(changes: dict[str, Any], topic: str) -> None:
    result = run(encode(payload(**changes)), topic=topic)
    if isinstance(result, DeadLetter):
        assert result.reason in Reason
        assert len(result.payload_head) <= PAYLOAD_HEAD_BYTES
    else:
        assert result.event.device_id == topic.split("/")[3]


@settings(max_examples=400, deadline=None)
@given(
    data=st.dictionaries(
        st.text(max_size=8),
        st.one_of(json_values, st.sampled_from([float("nan"), float("inf"), -float("inf")])),
        max_size=4,
    ),
    spelled=st.sampled_from(["NaN", "Infinity", "\\u0000", "N", "\\u0001"]),
)
def test_a_read_found_storable_parses_as_one_checked_message_by_message(
    data: dict[str, Any], spelled: str
) -> None:
    """`parse` skips its scan for NaN, Infinity and U+0000 only where `surely_storable` found
    none in the whole read; then the outcome is the one of the scan (and where it found one,
    the scan runs: what the store refuses is still a dead letter)."""
    raw = encode(payload(data={**data, "x": spelled}))
    checked = parse(topic=TOPIC, payload=raw, received_at=NOW, checked_storable=True)
    scanned = run(raw)
    if surely_storable(raw):
        assert checked == scanned
    else:
        assert any(mark in raw for mark in (b"NaN", b"Infinity", b"\\u0000"))


def test_a_read_with_nan_or_nul_anywhere_is_not_surely_storable() -> None:
    storable = encode(payload(data={"note": "fine"}))
    assert surely_storable(storable + storable)
    for bad in (b'{"a":NaN}', b'{"a":-Infinity}', b'{"a":"\\u0000"}'):
        assert not surely_storable(storable + bad + storable)
        assert isinstance(run(bad), DeadLetter)
