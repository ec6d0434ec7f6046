"""The person record's pure rules: when a hand-over note must be acknowledged, until when it is
shown, and the record as the API gives it (old clients' single device and plan)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from alarms.people.record import RECORD_COLUMNS, note_due, note_shown_until, record_of

TZ = ZoneInfo("Europe/Stockholm")
ACK_BY = time(22, 30)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def test_a_note_left_in_the_day_is_due_at_half_past_ten_that_evening() -> None:
    due = note_due(at("2026-11-03T14:05:00"), ack_by=ACK_BY, late_s=1800, tz=TZ)
    assert due == at("2026-11-03T22:30:00")
    assert note_shown_until(due, tz=TZ) == at("2026-11-04T12:00:00")


def test_a_note_left_after_the_time_is_due_half_an_hour_later() -> None:
    left = at("2026-11-03T23:10:00")
    due = note_due(left, ack_by=ACK_BY, late_s=1800, tz=TZ)
    assert due == left + timedelta(minutes=30)
    assert note_shown_until(due, tz=TZ) == at("2026-11-04T12:00:00")


def test_a_note_left_in_the_small_hours_is_for_the_coming_evening() -> None:
    due = note_due(at("2026-11-04T03:00:00"), ack_by=ACK_BY, late_s=1800, tz=TZ)
    assert due == at("2026-11-04T22:30:00")


def test_on_the_day_the_clocks_go_back_the_time_is_the_local_one() -> None:
    due = note_due(at("2026-10-25T09:00:00"), ack_by=ACK_BY, late_s=1800, tz=TZ)
    assert due.astimezone(TZ).strftime("%H:%M") == "22:30"
    assert due - at("2026-10-25T09:00:00") == timedelta(hours=13, minutes=30)


@given(
    left=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    ),
    ack_by=st.times(),
    late_s=st.floats(min_value=0.001, max_value=86_400),
)
def test_a_note_is_due_after_it_was_left_within_a_day_and_shown_until_a_noon_after_that(
    left: datetime, ack_by: time, late_s: float
) -> None:
    due = note_due(left, ack_by=ack_by, late_s=late_s, tz=TZ)
    assert left < due <= left + timedelta(days=1, hours=1)
    shown = note_shown_until(due, tz=TZ)
    assert due < shown <= due + timedelta(days=1, hours=1)
    assert shown.astimezone(TZ).time() == time(12, 0)


def test_the_record_names_the_first_device_and_plan_for_old_clients() -> None:
    row = dict.fromkeys(RECORD_COLUMNS)
    row.update(
        person_ref="P-1",
        name="Astrid",
        address="Storgatan 1",
        area_type="rural",
        language="sv",
        home_care_team="Team Norr",
        access=[{"kind": "key_safe", "ref": "KS-12", "where": "by the door"}],
        contacts=[{"name": "Eva", "phone": "070-1", "call_window": "08:00-21:00"}],
        devices=["d-2", "d-1"],
        plans=[],
        absences=[
            {"absence_id": "a", "from": "2026-11-01T00:00:00Z", "until": "2026-11-02T00:00:00Z"}
        ],
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
        updated_by="adm",
    )
    record = record_of([row[c] for c in RECORD_COLUMNS])
    assert (record.person_id, record.device_id, record.plan_id) == ("P-1", "d-2", None)
    assert record.home_care is not None and record.home_care.team == "Team Norr"
    dumped = record.model_dump(by_alias=True)
    assert dumped["absences"][0]["from"] == datetime(2026, 11, 1, tzinfo=UTC)
    assert dumped["access"][0]["kind"] == "key_safe"
