"""The live stream names the step that held its changes back."""

from __future__ import annotations

import logging
import time

import pytest

from api import stream


def test_a_change_held_back_is_logged_with_the_wait_for_a_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="api.stream"):
        stream._slow("a change's row", now - 1.0, now - 0.2)
        stream._slow("sending to a client", now)  # quick: not logged
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith("stream: a change's row took 1")
    assert "800 ms waiting for a connection" in message
