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
  the same device's row;
- with several ingest processes (`LARM_INGEST_PARTITIONS`), which one stores it: every process
  has its own persistent session with a plain subscription to every event, and stores only
  its own devices' (it acknowledges the others at once: their owner has its own copy). Plain
  subscriptions, unlike shared ones, survive a restart of Mosquitto 2.0, and a process that is
  down finds its devices' events waiting in its own session.
"""

from __future__ import annotations

import re
import zlib

ALARM_HINT = re.compile(rb'"kind"\s*:\s*"alarm\.(?!cancel")')


def looks_like_alarm(payload: bytes) -> bool:
    """True for a payload whose kind reads as a safety alarm (any `alarm.*` but the cancel)."""
    return ALARM_HINT.search(payload) is not None


ALARM_MARK = b'"alarm.'


def may_hold_alarm(payloads: bytes) -> bool:
    """False when no payload in `payloads` (a read's, joined) can look like a safety alarm: each
    that does holds `"alarm.`. One scan of a read instead of the hint's search per message."""
    return ALARM_MARK in payloads


def device_hash(topic: bytes) -> int:
    """A number for the device of `larm/v1/{site}/{device}/events` (for the whole topic when
    it has no such part), the same in every process and after every restart."""
    parts = topic.split(b"/", 4)
    return zlib.crc32(parts[3] if len(parts) > 3 else topic)


def owner(topic: bytes, partitions: int) -> int:
    """The ingest partition (of `LARM_INGEST_PARTITIONS`) that stores a message."""
    return device_hash(topic) % partitions if partitions > 1 else 0


def partition(topic: bytes, lanes: int, *, partitions: int = 1) -> int:
    """The bulk lane of a message inside its partition: by its device, independently of the
    partition (which used the hash's remainder by `partitions`)."""
    if lanes == 1:
        return 0
    return (device_hash(topic) // partitions) % lanes
