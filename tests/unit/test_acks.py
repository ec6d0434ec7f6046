"""The receiving order's acknowledgements (`ingest/acks.py`): only committed messages, in the
order they were read, each once, none from an older connection."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from ingest.acks import ReceiveOrder
from ingest.lanes import Message

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def message(mid: int, *, qos: int = 1, generation: int = 1) -> Message:
    return Message(generation, mid, qos, NOW, b"larm/v1/s/d/events", b"{}")


@given(
    count=st.integers(min_value=0, max_value=60),
    commits=st.data(),
)
def test_acknowledged_only_when_committed_in_reading_order_each_once(
    count: int, commits: st.DataObject
) -> None:
    order = ReceiveOrder()
    read = [message(mid, qos=1 if mid % 7 else 0) for mid in range(1, count + 1)]
    for m in read:
        order.note(m)
    # Batches commit in any order (lanes, writers, the alarm lane at once).
    pending = list(read)
    acked: list[int] = []
    while pending:
        picked = commits.draw(
            st.lists(st.sampled_from(range(len(pending))), min_size=1, max_size=8, unique=True)
        )
        for m in [pending[i] for i in picked]:
            m.done = True
            pending.remove(m)
        released = order.release(1)
        assert all(read[mid - 1].done for mid in released)  # never before its commit
        # The whole done prefix, nothing after the first message still pending.
        first_pending = min((m.mid for m in pending), default=count + 1)
        acked += released
        assert acked == [m.mid for m in read[: first_pending - 1] if m.qos == 1]
    assert acked == [m.mid for m in read if m.qos == 1]
    assert len(order) == 0


def test_an_older_connections_ids_are_never_acknowledged() -> None:
    order = ReceiveOrder()
    old = message(5, generation=1)
    order.note(old)
    order.forget()  # the connection dropped: its ids would acknowledge other messages
    new = message(5, generation=2)
    order.note(new)
    old.done = True
    assert order.release(2) == []
    new.done = True
    assert order.release(2) == [5]
    straggler = message(6, generation=2)
    order.note(straggler)
    straggler.done = True
    assert order.release(3) == []  # committed after another reconnect: not acknowledged


def test_an_uncommitted_message_holds_back_the_newer_ones() -> None:
    order = ReceiveOrder()
    first, second = message(1), message(2)
    order.note(first)
    order.note(second)
    second.done = True
    assert order.release(1) == []
    first.done = True
    assert order.release(1) == [1, 2]
