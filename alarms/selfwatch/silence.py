"""The system watches itself, pure: is larmkedja silent? (A receiver fault once went unnoticed
for 17 hours.) Used by the engine (`system.silent` alert) and by `/readyz`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestBeat:
    """What one ingest instance last said about itself."""

    instance: str
    seen_at: datetime
    mqtt_connected: bool
    disconnected_since: datetime | None
    last_commit_at: datetime | None
    oldest_pending_at: datetime | None


def silence_reasons(
    *,
    now: datetime,
    beats: Sequence[IngestBeat],
    devices_registered: bool,
    last_event_at: datetime | None,
    silence_s: float,
    stale_s: float,
    commit_stall_s: float,
) -> list[str]:
    """Why the system is silent (empty: it is not)."""
    alive = [b for b in beats if (now - b.seen_at).total_seconds() <= stale_s]
    reasons: list[str] = []
    if not alive:
        reasons.append("no ingest process is alive")
    elif not any(
        b.mqtt_connected
        or b.disconnected_since is None
        or (now - b.disconnected_since).total_seconds() <= stale_s
        for b in alive
    ):
        reasons.append("no ingest process is connected to the broker")
    # Mosquitto deals a shared subscription's messages to its members even while one is
    # offline: what it deals to a dead instance waits in the broker until that one is back.
    reasons += [
        f"ingest instance {b.instance} is down; its share of the events waits in the broker"
        for b in beats
        if alive and (now - b.seen_at).total_seconds() > stale_s
    ]
    for beat in alive:
        waiting = beat.oldest_pending_at
        if waiting is not None and (now - waiting).total_seconds() > commit_stall_s:
            reasons.append(f"an ingest process holds events uncommitted for > {commit_stall_s:g} s")
            break
    if devices_registered and (
        last_event_at is None or (now - last_event_at).total_seconds() > silence_s
    ):
        reasons.append(f"no device event for more than {silence_s:g} s")
    return reasons
