"""What every protocol receiver shares: senders, translated messages, event identity.

Pure: no sockets, no database, no MQTT. A receiver parses its protocol into `Translated`
messages; `to_event` turns one into the contract's `DeviceEvent` for the sender's device.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from larmkedja.events import DeviceEvent, Kind


class Protocol(enum.StrEnum):
    SCAIP = "scaip"
    SOS_ACCESS = "sos-access"
    SIA_DC09 = "sia-dc09"


class Refusal(enum.StrEnum):
    """Why a message was refused; the dead letter's reason (prefixed `gateway.`)."""

    UNKNOWN_SENDER = "unknown_sender"
    NOT_AUTHORIZED = "not_authorized"
    MALFORMED = "malformed"
    UNDECRYPTABLE = "undecryptable"


@dataclass(frozen=True, slots=True, kw_only=True)
class Sender:
    """One registered sender: its protocol identity, the device it is, and what it holds.

    `plain` is an administrator's explicit choice (`sender add --plain`): a DC-09 account that
    sends unencrypted blocks, a SCAIP controller identified by its `cid` alone. Every other
    sender has a secret (gateway/credentials.py says what is kept of it)."""

    protocol: Protocol
    sender_id: str
    site: str
    device_id: str
    secret: str | None = None
    heartbeat_s: float | None = None
    plain: bool = False

    def aes_key(self) -> bytes | None:
        """SIA DC-09: the stored secret is the AES key in hex."""
        if not self.secret:
            return None
        try:
            key = bytes.fromhex(self.secret)
        except ValueError:
            return None
        return key if len(key) in (16, 24, 32) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Translated:
    """One device message in contract terms, before it knows its device.

    `identity` is what makes a retry of the same message recognisable (the protocol's own
    reference, sequence number or device time, with the content); None when the message
    carries nothing of the kind, and then every delivery is a new event: a retry may count
    twice in an open alarm's `event_count`, but a press is never lost.
    `exact` says the identity includes the device's own timestamp, so it needs no time
    bucket to tell a retry from a later message that reuses a reference.
    """

    kind: Kind
    data: dict[str, Any] = field(default_factory=dict)
    ts: datetime | None = None
    identity: str | None = None
    exact: bool = False


# Fixed namespace: the same message from the same sender gets the same event id on every
# gateway instance and after a restart, so the broker's or the device's retries are stored
# once (ingest keeps the first of an event id).
EVENT_NAMESPACE = uuid.UUID("7d3f2a52-6b0e-4b7c-9a51-2f4f0f6c9a11")
IDENTITY_BUCKET_S = 600
_NAMESPACE_SHA1 = hashlib.sha1(EVENT_NAMESPACE.bytes, usedforsecurity=False)
_VARIANT_MASK, _RFC_4122 = 0xC000 << 48, 0x8000 << 48
_VERSION_MASK, _VERSION_5 = 0xF000 << 64, 5 << 76


def uuid5(name: str) -> uuid.UUID:
    """`uuid.uuid5(EVENT_NAMESPACE, name)`, with the namespace hashed once, not per event, and
    the UUID made from its integer (less than half the time; the same ids)."""
    sha1 = _NAMESPACE_SHA1.copy()
    sha1.update(name.encode())
    value = int.from_bytes(sha1.digest()[:16], "big")
    value = (value & ~_VARIANT_MASK) | _RFC_4122
    return uuid.UUID(int=(value & ~_VERSION_MASK) | _VERSION_5)


def event_id_for(sender: Sender, message: Translated, *, received_at: datetime) -> uuid.UUID | None:
    """The deterministic event id of a message, or None when it has no identity.

    Without a device timestamp the identity is bucketed by receive time (10 minutes): a
    retry within the bucket is the same event, a device that restarts its reference counter
    next week is not mistaken for a retry."""
    if message.identity is None:
        return None
    name = f"{sender.protocol.value}\x1f{sender.sender_id}\x1f{message.identity}"
    if not message.exact:
        name += f"\x1f{int(received_at.timestamp()) // IDENTITY_BUCKET_S}"
    return uuid5(name)


def to_event(sender: Sender, message: Translated, *, received_at: datetime) -> DeviceEvent:
    """The contract event for this sender's device. The device's time when it sent one
    (and it is sane), else the time the gateway received it."""
    data = dict(message.data)
    if message.kind is Kind.HEARTBEAT and sender.heartbeat_s and "interval_s" not in data:
        data["interval_s"] = sender.heartbeat_s
    return DeviceEvent.create(
        sender.device_id,
        message.kind,
        data,
        ts=_sane(message.ts, received_at),
        event_id=event_id_for(sender, message, received_at=received_at),
    )


_MAX_CLOCK_SKEW_S = 24 * 3600


def _sane(ts: datetime | None, received_at: datetime) -> datetime:
    if ts is None or ts.tzinfo is None:
        return received_at
    if abs((ts - received_at).total_seconds()) > _MAX_CLOCK_SKEW_S:
        return received_at  # a device clock a day off says nothing about when it happened
    return ts.astimezone(UTC)
