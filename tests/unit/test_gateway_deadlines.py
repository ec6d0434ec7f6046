"""The gateway's PUBACK timeouts (`gateway.publish_paho.Deadlines`): every publish still waiting
at its deadline is given up (False: the device retries), one settled before is left alone, and
all of it with one timer, not one per publish."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.publish_paho import TICK_S, Deadlines

TIMEOUT_S = 0.2


async def test_a_publish_still_waiting_at_its_deadline_is_given_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    timers: list[float] = []
    call_at = loop.call_at
    deadlines = Deadlines(timeout_s=TIMEOUT_S)

    def counted(when: float, callback: Any, *args: Any, **kw: Any) -> asyncio.TimerHandle:
        if callback == deadlines._expire:
            timers.append(when)
        return call_at(when, callback, *args, **kw)

    monkeypatch.setattr(loop, "call_at", counted)
    started = loop.time()
    futures = [loop.create_future() for _ in range(100)]
    for future in futures:
        deadlines.add(loop, future)
    futures[0].set_result(True)  # its PUBACK came
    await asyncio.sleep(TIMEOUT_S / 2)
    late = loop.create_future()
    deadlines.add(loop, late)
    assert not any(f.done() for f in futures[1:])
    await asyncio.wait(futures[1:])
    waited = loop.time() - started
    assert TIMEOUT_S <= waited < TIMEOUT_S + TICK_S + 0.1
    assert futures[0].result() is True
    assert not any(f.result() for f in futures[1:])
    assert not late.done()
    assert await late is False
    assert loop.time() - started < 1.5 * TIMEOUT_S + TICK_S + 0.1
    assert len(timers) <= 3  # the first deadline, the late one's, nothing per publish
