"""Which lane a message goes to before it is parsed: the alarm hint agrees with the parser on
every event a device can send the way devices send them, and a misjudged one is only late."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from ingest.parse import parse
from ingest.routing import looks_like_alarm, may_hold_alarm, owner, partition
from larmkedja.events import Kind, ReceivedEvent

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
DEVICES = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)


DATA = {
    "battery.report": {"percent": 50},
    "check.result": {
        "plan_id": "p-1",
        "scheduled_for": "2026-12-06T22:00:00+01:00",
        "outcome": "seen_ok",
        "operator": "op",
    },
}


def payload(kind: str, device: str, *, spaced: bool) -> bytes:
    event = {
        "v": 1,
        "event_id": str(uuid.uuid4()),
        "device_id": device,
        "ts": "2026-12-06T21:00:00+01:00",
        "kind": kind,
        "data": DATA.get(kind, {}),
    }
    separators = (", ", ": ") if spaced else (",", ":")
    return json.dumps(event, separators=separators).encode()


@given(st.sampled_from(list(Kind)), DEVICES, st.booleans())
def test_the_hint_agrees_with_the_parser(kind: Kind, device: str, spaced: bool) -> None:
    raw = payload(kind.value, device, spaced=spaced)
    item = parse(topic=f"larm/v1/s/{device}/events", payload=raw, received_at=NOW)
    assert isinstance(item, ReceivedEvent)
    assert looks_like_alarm(raw) == item.event.kind.is_alarm


@given(st.lists(st.tuples(st.sampled_from(list(Kind)), DEVICES, st.booleans()), max_size=6))
def test_a_read_without_the_mark_holds_nothing_the_hint_takes(
    events: list[tuple[Kind, str, bool]],
) -> None:
    """The read-wide check only skips the hint where it would have said no to every payload."""
    raws = [payload(kind.value, device, spaced=spaced) for kind, device, spaced in events]
    if not may_hold_alarm(b"".join(raws)):
        assert not any(looks_like_alarm(raw) for raw in raws)
    assert may_hold_alarm(b"".join(raws)) == any(b'"alarm.' in raw for raw in raws)


def test_a_kind_in_json_escapes_is_misjudged_but_still_an_alarm_when_parsed() -> None:
    raw = payload("alarm.button", "d-1", spaced=False).replace(b'"alarm.', b'"\\u0061larm.')
    assert not looks_like_alarm(raw)  # it goes to a bulk lane: batched, not lost
    item = parse(topic="larm/v1/s/d-1/events", payload=raw, received_at=NOW)
    assert isinstance(item, ReceivedEvent) and item.event.kind is Kind.ALARM_BUTTON


def test_cancel_and_data_mentioning_alarms_are_not_alarms() -> None:
    assert not looks_like_alarm(payload("alarm.cancel", "d-1", spaced=False))
    assert not looks_like_alarm(b'{"kind":"heartbeat","data":{"note":"alarm.button"}}')


@given(DEVICES, st.integers(1, 8), st.from_regex(r"[a-z0-9-]{1,32}", fullmatch=True))
def test_a_device_always_goes_to_one_lane_whatever_its_site(
    device: str, lanes: int, site: str
) -> None:
    one = partition(f"larm/v1/{site}/{device}/events".encode(), lanes)
    other = partition(f"larm/v1/other/{device}/events".encode(), lanes)
    assert 0 <= one < lanes and one == other


@given(st.binary(max_size=100), st.integers(1, 8))
def test_any_topic_has_a_lane(topic: bytes, lanes: int) -> None:
    assert 0 <= partition(topic, lanes) < lanes


def test_each_partition_spreads_its_devices_over_every_lane() -> None:
    topics = [f"larm/v1/s/d-{i}/events".encode() for i in range(2000)]
    for partitions in (1, 2, 3):
        for mine in range(partitions):
            lanes = {
                partition(t, 2, partitions=partitions)
                for t in topics
                if owner(t, partitions) == mine
            }
            assert lanes == {0, 1}, (partitions, mine)


@given(st.binary(max_size=100), st.integers(1, 8))
def test_every_message_has_exactly_one_owner(topic: bytes, partitions: int) -> None:
    assert [owner(topic, partitions) == k for k in range(partitions)].count(True) == 1
