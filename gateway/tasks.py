"""The gateway's own tasks at shutdown: finished if they can be, cancelled if they cannot.

A task still pending when the event loop closes is destroyed unfinished, and one that ends after
its socket has closed writes to nothing: each is an error in the log at the very least. What is
in hand when the gateway stops (a device message being published, a dead letter being kept) is
given `timeout_s` to finish; what is still running then is cancelled and awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Collection


async def settle(tasks: Collection[asyncio.Task[None]], *, timeout_s: float) -> int:
    """Wait for `tasks` up to `timeout_s`, cancel those still running, wait for them to end;
    how many were cancelled."""
    if not tasks:
        return 0
    _, pending = await asyncio.wait(list(tasks), timeout=timeout_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    return len(pending)
