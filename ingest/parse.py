"""Turn one MQTT message into a `ReceivedEvent` or a `DeadLetter`. Pure: no I/O, never raises.

Every way a payload can break contract §1 has its own `Reason` (a bounded set, so it can be a
metric label). The dead letter keeps at most the first 256 bytes of the payload.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from larmkedja import events
from larmkedja.events import (
    DEVICE_ID_PATTERN,
    MAX_PAYLOAD_BYTES,
    SITE_PATTERN,
    DeviceEvent,
    ReceivedEvent,
    received,
)

PAYLOAD_HEAD_BYTES = 256
MAX_TOPIC_CHARS = 512
_SITE = re.compile(SITE_PATTERN)


class Reason(enum.StrEnum):
    BAD_TOPIC = "bad_topic"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    BAD_VERSION = "bad_version"
    MISSING_FIELD = "missing_field"
    UNKNOWN_KIND = "unknown_kind"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_EVENT_ID = "bad_event_id"
    BAD_DEVICE_ID = "bad_device_id"
    WRONG_TYPE = "wrong_type"
    BAD_DATA = "bad_data"
    DEVICE_MISMATCH = "device_mismatch"
    UNSUPPORTED_CONTENT = "unsupported_content"
    STORE_REJECTED = "store_rejected"


class DeadLetter(events.DeadLetter[Reason]):
    """A payload that is not a valid event: kept with its reason, never acted on."""

    __slots__ = ()


# The whole topic in one match (one regex call per message, not a split and two).
_TOPIC = re.compile(
    rf"larm/v1/({SITE_PATTERN.strip('^$')})/({DEVICE_ID_PATTERN.strip('^$')})/events"
)


def parse_topic(topic: str) -> re.Match[str] | None:
    """The topic's match: its site is group 1, its device group 2 (a match rather than an
    object of our own: one object less per event on ingest's hot path)."""
    return _TOPIC.fullmatch(topic)


def topic_site(topic: str) -> str | None:
    """The topic's site if it is a valid one (where the dead-letter notice goes)."""
    parts = topic.split("/")
    if len(parts) >= 3 and parts[0] == "larm" and _SITE.fullmatch(parts[2]):
        return parts[2]
    return None


def _dead(
    topic: str, payload: bytes, received_at: datetime, reason: Reason, detail: str
) -> DeadLetter:
    return DeadLetter(
        topic=topic[:MAX_TOPIC_CHARS],
        site=topic_site(topic),
        reason=reason,
        detail=detail[:300],
        received_at=received_at,
        payload_head=bytes(payload[:PAYLOAD_HEAD_BYTES]),
    )


def parse(
    *, topic: str, payload: bytes, received_at: datetime, checked_storable: bool = False
) -> ReceivedEvent | DeadLetter:
    """Check one message against contract §1. `checked_storable`: the caller has found none of
    `UNSTORABLE_MARKS` in the payload (`surely_storable` over a whole read), so the scan for
    what JSON's parser accepts but the store does not is skipped."""
    where = parse_topic(topic)
    if where is None:
        detail = "topic is not larm/v1/{site}/{device_id}/events"
        return _dead(topic, payload, received_at, Reason.BAD_TOPIC, detail)
    if len(payload) > MAX_PAYLOAD_BYTES:
        detail = f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}"
        return _dead(topic, payload, received_at, Reason.PAYLOAD_TOO_LARGE, detail)
    try:
        event = DeviceEvent.model_validate_json(payload)
    except ValidationError as exc:
        return _dead(topic, payload, received_at, *_classify(exc, payload))
    except Exception as exc:  # a validator bug must not stop ingest: the message is kept.
        detail = f"unexpected validation failure: {type(exc).__name__}"
        return _dead(topic, payload, received_at, Reason.BAD_DATA, detail)
    if not checked_storable and (problem := _unstorable(payload)) is not None:
        return _dead(topic, payload, received_at, *problem)
    if event.device_id != where[2]:
        detail = "device_id differs from the topic's device_id"
        return _dead(topic, payload, received_at, Reason.DEVICE_MISMATCH, detail)
    return received(where[1], event, received_at)


# What JSON's parser (pydantic's) accepts and the contract or PostgreSQL does not can only be
# spelled with one of these: NaN and Infinity (not JSON), and the escape of U+0000 (which no
# PostgreSQL text can hold). A payload without any of them needs no closer look.
UNSTORABLE_MARKS = (b"NaN", b"Infinity", b"\\u0000")


def surely_storable(payloads: bytes) -> bool:
    """True when none of `UNSTORABLE_MARKS` is in `payloads` (ingest joins a whole read of the
    socket: three scans of a read instead of three per message, 1.1 µs a message here)."""
    return not any(mark in payloads for mark in UNSTORABLE_MARKS)


def _unstorable(payload: bytes) -> tuple[Reason, str] | None:
    """What the JSON parser accepts but the contract (or PostgreSQL) does not."""
    if UNSTORABLE_MARKS[0] in payload or UNSTORABLE_MARKS[1] in payload:
        try:
            orjson.loads(payload)
        except orjson.JSONDecodeError:
            return Reason.NOT_JSON, "NaN or Infinity is not JSON"
    if UNSTORABLE_MARKS[2] in payload and _has_nul(orjson.loads(payload)):
        return Reason.UNSUPPORTED_CONTENT, "a string holds U+0000, which cannot be stored"
    return None


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


_BY_FIELD = {
    "v": Reason.BAD_VERSION,
    "event_id": Reason.BAD_EVENT_ID,
    "device_id": Reason.BAD_DEVICE_ID,
    "ts": Reason.BAD_TIMESTAMP,
    "kind": Reason.UNKNOWN_KIND,
}
# When several things are wrong, the first of these names the dead letter.
_PRECEDENCE = [
    Reason.NOT_OBJECT,
    Reason.BAD_VERSION,
    Reason.MISSING_FIELD,
    Reason.UNKNOWN_KIND,
    Reason.WRONG_TYPE,
    Reason.BAD_EVENT_ID,
    Reason.BAD_DEVICE_ID,
    Reason.BAD_TIMESTAMP,
    Reason.BAD_DATA,
]
_TYPE_ERRORS = {"string_type", "int_type", "float_type", "bool_type", "dict_type", "model_type"}


def _classify(exc: ValidationError, payload: bytes) -> tuple[Reason, str]:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if any(e["type"] == "json_invalid" for e in errors):
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            return Reason.NOT_UTF8, "payload is not UTF-8"
        return Reason.NOT_JSON, "payload is not JSON"
    found: dict[Reason, str] = {}
    for error in errors:
        reason = _reason_of(error["type"], error["loc"])
        loc = ".".join(str(part) for part in error["loc"]) or "payload"
        found.setdefault(reason, f"{loc}: {error['msg']}")
    for reason in _PRECEDENCE:
        if reason in found:
            return reason, found[reason]
    reason, detail = next(iter(found.items()))  # pragma: no cover - every reason is listed
    return reason, detail


def _reason_of(error_type: str, loc: tuple[int | str, ...]) -> Reason:
    if not loc:
        return Reason.NOT_OBJECT if error_type == "model_type" else Reason.BAD_DATA
    field = str(loc[0])
    if error_type == "missing" and len(loc) == 1:
        return Reason.MISSING_FIELD
    if field == "data":
        return Reason.WRONG_TYPE if len(loc) == 1 else Reason.BAD_DATA
    if field in ("v", "ts", "kind"):
        return _BY_FIELD[field]
    if error_type in _TYPE_ERRORS:
        return Reason.WRONG_TYPE
    return _BY_FIELD.get(field, Reason.BAD_DATA)
