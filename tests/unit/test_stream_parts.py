"""The live stream's own rules: the step that held changes back is named, and in a batch of
changes a safety alarm goes first."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

import pytest

from api import stream


def test_a_change_held_back_is_logged_with_the_wait_for_a_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="api.stream"):
        stream._slow("reading 3 changes", now - 1.0, now - 0.2)
        stream._slow("sending to a client", now)  # quick: not logged
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith("stream: reading 3 changes took 1")
    assert "800 ms waiting for a connection" in message


@dataclass(frozen=True)
class Row:
    alarm_id: uuid.UUID
    priority: int


def test_in_a_batch_a_safety_alarm_goes_before_the_technical_alarms_noted_before_it() -> None:
    noted = [uuid.uuid4() for _ in range(5)]
    priorities = [4, 4, 1, 4, 2]  # devices offline, a person's alarm, ..., a fire alarm
    rows = [Row(alarm_id=i, priority=p) for i, p in zip(noted, priorities, strict=True)]
    gone = uuid.uuid4()  # a row that was not noted comes after the noted ones of its priority
    rows.append(Row(alarm_id=gone, priority=4))
    ordered = stream.urgent_first(list(reversed(rows)), noted)
    assert [a.alarm_id for a in ordered] == [noted[2], noted[4], noted[0], noted[1], noted[3], gone]
