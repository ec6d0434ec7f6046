"""The settings the contract names (§4, §6) are read from exactly those variables, fractions
included; the ways to run several ingest processes exclude each other."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from larmkedja.settings import Settings

CONTRACT = {
    "LARM_ANSWER_TARGET_S": ("answer_target_s", 33.5),
    "LARM_ANSWER_WINDOW_S": ("answer_window_s", 60.5),
    "LARM_UNANSWERED_ALERT_S": ("unanswered_alert_s", 0.5),
    "LARM_HEARTBEAT_MISSES": ("heartbeat_misses", 4),
    "LARM_BATTERY_SPEC_HOURS": ("battery_spec_hours", 48.5),
    "LARM_RECHECK_MINUTES": ("recheck_minutes", 0.25),
    "LARM_PATROL_ACK_MINUTES": ("patrol_ack_minutes", 0.1),
    "LARM_STALE_ANSWERED_MINUTES": ("stale_answered_minutes", 0.01),
    "LARM_TEST_DUE_DAYS": ("test_due_days", 0.0001),
}


def test_the_contracts_settings_are_read_from_their_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, (_, value) in CONTRACT.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    for name, (field, value) in CONTRACT.items():
        assert getattr(settings, field) == value, name


def test_partitions_and_a_share_group_exclude_each_other() -> None:
    with pytest.raises(ValidationError):
        Settings(ingest_partitions=2, ingest_share_group="ingest")
    with pytest.raises(ValidationError):
        Settings(ingest_partitions=2, ingest_partition=2)
    assert Settings(ingest_partitions=2, ingest_partition=1).ingest_partition == 1
