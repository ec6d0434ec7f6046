"""Acknowledge in the order received: a PUBACK goes out only for the committed prefix.

Ingest's lanes commit out of receiving order (an alarm at once, two bulk writers each with
its own devices), and Mosquitto 2.0 finds an acknowledged message by walking its in-flight list
from the oldest: acknowledged out of order, each PUBACK walked past every older message still
in flight (up to the receive maximum of 20,000), and during a drain the broker spent 0.8 of a
core on that walk (docs/bench.md). So every message is noted when read, marked done when its
batch commits, and the acknowledgements leave as the done prefix of the receiving order
grows: the broker then finds each at the head of its list. A message is still acknowledged only
after its own commit; one may wait for an older one's commit (at most a batch), never longer.

Pure: no locks, no I/O. The caller (`ingest/service.py`) holds one lock around `release` and
`forget`; `note` is only called from the thread that reads the socket.
"""

from __future__ import annotations

from collections import deque

from ingest.lanes import Message


class ReceiveOrder:
    def __init__(self) -> None:
        self._queue: deque[Message] = deque()

    def note(self, message: Message) -> None:
        """A message read from the socket, in reading order (before any lane may commit it)."""
        self._queue.append(message)

    def release(self, generation: int) -> list[int]:
        """Forget the done prefix; the packet ids in it to acknowledge: QoS 1 and read on
        connection `generation` (an id from an older connection would acknowledge another)."""
        queue = self._queue
        mids: list[int] = []
        while queue and queue[0].done:
            message = queue.popleft()
            if message.qos == 1 and message.generation == generation:
                mids.append(message.mid)
        return mids

    def forget(self) -> None:
        """The connection is gone: its packet ids mean nothing now (the broker redelivers)."""
        self._queue.clear()

    def __len__(self) -> int:
        return len(self._queue)
