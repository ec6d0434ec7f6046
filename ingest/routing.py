"""Which lane a received message goes to, decided from its bytes before it is parsed (pure).

paho's network thread only frames messages; parsing and validation happen in the writer
threads, a batch at a time, so the socket is read as fast as the broker sends. Two things are
decided on the raw bytes:

- whether a message *looks like* a safety alarm (`"kind": "alarm.…"`, not the cancel): it is
  parsed at once and, if it is one, goes to the alarm lane and is committed on its own,
  ahead of every heartbeat read with it. The hint only orders work; a message it misjudges (a
  kind spelled with JSON escapes, say) is still parsed, stored and acted on, in a batch;
- which bulk lane gets it: by its device (the topic's fourth level), so one device's events
  are always written by one writer, in the order they arrived, and two writers never update
  the same device's row.
"""

from __future__ import annotations

import re
import zlib

ALARM_HINT = re.compile(rb'"kind"\s*:\s*"alarm\.(?!cancel")')


def looks_like_alarm(payload: bytes) -> bool:
    """True for a payload whose kind reads as a safety alarm (any `alarm.*` but the cancel)."""
    return ALARM_HINT.search(payload) is not None


def partition(topic: bytes, lanes: int) -> int:
    """The bulk lane of a message: by the device part of `larm/v1/{site}/{device}/events`
    (the whole topic when it has no such part), stable across processes and restarts."""
    if lanes == 1:
        return 0
    parts = topic.split(b"/", 4)
    key = parts[3] if len(parts) > 3 else topic
    return zlib.crc32(key) % lanes
