"""The contract v1 device event (contract §1): one model, used by every package.

Devices, the gateway and the simulators build a `DeviceEvent`; ingest parses one from MQTT and
wraps it in a `ReceivedEvent` (adds the topic's site and the time the system received it); the
alarm chain, supervision and the API read it from there. Nothing passes raw dicts around.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

SITE_PATTERN = r"^[a-z0-9-]{1,32}$"
DEVICE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_PAYLOAD_BYTES = 8 * 1024
CONTRACT_VERSION = 1

DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
Site = Annotated[str, StringConstraints(pattern=SITE_PATTERN)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Kind(enum.StrEnum):
    """Every event kind of contract §1."""

    ALARM_BUTTON = "alarm.button"
    ALARM_FALL = "alarm.fall"
    ALARM_SMOKE = "alarm.smoke"
    ALARM_DOOR = "alarm.door"
    ALARM_BED_EXIT = "alarm.bed_exit"
    ALARM_NO_ACTIVITY = "alarm.no_activity"
    ALARM_OTHER = "alarm.other"
    ALARM_CANCEL = "alarm.cancel"
    HEARTBEAT = "heartbeat"
    POWER_MAINS_LOST = "power.mains_lost"
    POWER_MAINS_RESTORED = "power.mains_restored"
    BATTERY_REPORT = "battery.report"
    BATTERY_LOW = "battery.low"
    TAMPER = "tamper"
    LINK_LOST = "link.lost"
    LINK_RESTORED = "link.restored"
    CHECK_RESULT = "check.result"

    @property
    def is_alarm(self) -> bool:
        """A safety alarm: a person may need help (every `alarm.*` but the cancel)."""
        return self in ALARM_KINDS


ALARM_KINDS = frozenset(
    {
        Kind.ALARM_BUTTON,
        Kind.ALARM_FALL,
        Kind.ALARM_SMOKE,
        Kind.ALARM_DOOR,
        Kind.ALARM_BED_EXIT,
        Kind.ALARM_NO_ACTIVITY,
        Kind.ALARM_OTHER,
    }
)


class AlarmKind(enum.StrEnum):
    """Every kind of entry in the operator queue: the safety alarms of contract §1, the device
    faults that go to the queue as technical alarms, and what the system raises itself."""

    BUTTON = Kind.ALARM_BUTTON.value
    FALL = Kind.ALARM_FALL.value
    SMOKE = Kind.ALARM_SMOKE.value
    DOOR = Kind.ALARM_DOOR.value
    BED_EXIT = Kind.ALARM_BED_EXIT.value
    NO_ACTIVITY = Kind.ALARM_NO_ACTIVITY.value
    OTHER = Kind.ALARM_OTHER.value
    TAMPER = Kind.TAMPER.value
    LINK_LOST = Kind.LINK_LOST.value
    SUPERVISION_NEEDS_HELP = "supervision.needs_help"
    SUPERVISION_CAMERA_OFFLINE = "supervision.camera_offline"
    DEVICE_OFFLINE = "device.offline"
    SITE_POWER_CUT = "site.power_cut"
    DEVICE_TEST_FAILED = "device.test_failed"


class AlertKind(enum.StrEnum):
    """Every kind of operational alert on `larm/v1/{site}/alerts` (contract §2)."""

    ANSWER_TIME_MEAN_ABOVE_TARGET = "answer_time.mean_above_target"
    ALARM_UNANSWERED = "alarm.unanswered"
    ALARM_STALE = "alarm.stale"
    DEVICE_TEST_DUE = "device.test_due"
    DEVICE_OFFLINE = "device.offline"
    DEVICE_ON_BATTERY = "device.on_battery"
    DEVICE_BACKUP_BELOW_SPEC = "device.backup_below_spec"
    BATTERY_LOW = "battery.low"
    SITE_POWER_CUT = "site.power_cut"
    SUPERVISION_CHECK_MISSED = "supervision.check_missed"
    SUPERVISION_NOT_SEEN = "supervision.not_seen"
    SUPERVISION_RESULT_UNMATCHED = "supervision.result_unmatched"
    ESCALATION_UNACKNOWLEDGED = "escalation.unacknowledged"
    HANDOVER_UNACKNOWLEDGED = "handover.unacknowledged"
    SYSTEM_SILENT = "system.silent"


class CheckOutcome(enum.StrEnum):
    SEEN_OK = "seen_ok"
    NOT_SEEN = "not_seen"
    NEEDS_HELP = "needs_help"
    CAMERA_OFFLINE = "camera_offline"


class _Data(BaseModel):
    """Kind-specific `data`: the named keys are checked, unknown keys are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)


class AlarmData(_Data):
    component: ShortText | None = None


class CancelData(_Data):
    alarm_kind: Kind | None = None


class HeartbeatData(_Data):
    interval_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] | None = None


class BatteryReportData(_Data):
    percent: Annotated[float, Field(ge=0, le=100)]
    on_mains: bool | None = None


class BatteryLowData(_Data):
    percent: Annotated[float, Field(ge=0, le=100)] | None = None


class CheckResultData(_Data):
    plan_id: ShortText
    scheduled_for: AwareDatetime
    outcome: CheckOutcome
    operator: ShortText
    duration_s: Annotated[float, Field(ge=0, le=24 * 3600)] | None = None


class _NoData(_Data):
    pass


DATA_MODELS: dict[Kind, type[_Data]] = {
    **{k: AlarmData for k in ALARM_KINDS},
    Kind.ALARM_CANCEL: CancelData,
    Kind.HEARTBEAT: HeartbeatData,
    Kind.BATTERY_REPORT: BatteryReportData,
    Kind.BATTERY_LOW: BatteryLowData,
    Kind.CHECK_RESULT: CheckResultData,
}


class DeviceEvent(BaseModel):
    """One event as a device sends it (contract §1). Unknown top-level fields are ignored."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    v: Literal[1]
    event_id: uuid.UUID
    device_id: DeviceId
    ts: AwareDatetime
    kind: Kind
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_data(self) -> DeviceEvent:
        if _plainly_valid(self.kind, self.data):
            return self  # the common cases, without building a data model (hot path)
        model = DATA_MODELS.get(self.kind, _NoData)
        try:
            model.model_validate(self.data, strict=False)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"data.{where} for {self.kind.value}: {first['msg']}") from None
        return self

    @classmethod
    def create(
        cls,
        device_id: str,
        kind: Kind,
        data: dict[str, Any] | None = None,
        *,
        ts: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> DeviceEvent:
        """A new, valid event as a device would make it (a fresh id, now as its time)."""
        return cls(
            v=1,
            event_id=event_id or uuid.uuid4(),
            device_id=device_id,
            ts=ts or datetime.now(UTC),
            kind=kind,
            data=data or {},
        )

    def typed_data(self) -> _Data:
        """`data` checked and typed for this kind (the raw dict stays the stored form)."""
        return DATA_MODELS.get(self.kind, _NoData).model_validate(self.data)

    def heartbeat_interval_s(self) -> float | None:
        value = self.data.get("interval_s") if self.kind is Kind.HEARTBEAT else None
        return float(value) if isinstance(value, int | float) else None

    def to_json(self) -> bytes:
        """The wire form: compact UTF-8 JSON, as a device would publish it. An event stamped
        in UTC (the gateway's, the simulators') is written by orjson as it is, in a quarter of
        the time of pydantic's dump and to the same bytes (tests/unit/test_event_model.py);
        another time zone (pydantic writes an offset with seconds its own way), or what orjson
        cannot write (an integer beyond 64 bits in `data`), takes pydantic's dump."""
        if self.ts.tzinfo is not UTC:
            return json_bytes(self.model_dump(mode="json"))
        fields = {
            "v": self.v,
            "event_id": self.event_id,
            "device_id": self.device_id,
            "ts": self.ts,
            "kind": self.kind,
            "data": self.data,
        }
        try:
            return orjson.dumps(fields, option=orjson.OPT_UTC_Z)
        except TypeError:
            return json_bytes(self.model_dump(mode="json"))

    def topic(self, site: str) -> str:
        return events_topic(site, self.device_id)


_MAX_INTERVAL_S = 7 * 24 * 3600
_MAX_SHORT_TEXT = 128
_NEEDS_DATA = frozenset({Kind.BATTERY_REPORT, Kind.CHECK_RESULT})
_KIND_VALUES = frozenset(k.value for k in Kind)


def _plainly_valid(kind: Kind, data: dict[str, Any]) -> bool:
    """True only where the kind's data model would surely accept `data`: a kind whose model
    names no key in it (every other key is kept unchecked), or names one with a plainly good
    value (a heartbeat's `interval_s` a number in range, an alarm's `component` a short text, a
    cancel's `alarm_kind` a kind). False means: ask the model. `tests/unit/test_event_model.py`
    holds it to the models on generated data."""
    if not data:
        return kind not in _NEEDS_DATA
    if kind is Kind.HEARTBEAT:
        if "interval_s" not in data:
            return True
        interval = data["interval_s"]
        if type(interval) is not int and type(interval) is not float:
            return False  # bools, strings, None: let the model decide
        return 0 < interval <= _MAX_INTERVAL_S
    if kind in ALARM_KINDS:
        if "component" not in data:
            return True
        component = data["component"]
        return type(component) is str and 0 < len(component) <= _MAX_SHORT_TEXT
    if kind is Kind.ALARM_CANCEL:
        if "alarm_kind" not in data:
            return True
        restores = data["alarm_kind"]
        return isinstance(restores, str) and restores in _KIND_VALUES
    return kind not in DATA_MODELS  # the rest without a model of their own take any keys


def json_bytes(value: Any) -> bytes:
    """Compact JSON. orjson is fast but refuses integers beyond 64 bits, which JSON (and a
    device) may send and PostgreSQL's jsonb keeps: those take the standard library's way."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def events_topic(site: str, device_id: str) -> str:
    return f"larm/v1/{site}/{device_id}/events"


R = TypeVar("R", bound=str)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter(Generic[R]):
    """A message that is not a valid event (ingest's) or that a gateway refused: kept in
    `dead_letters` with its reason (of the set `R`), never acted on, and told on contract §2's
    dead-letter topic. `payload_head` is at most the first 256 bytes of what was received."""

    topic: str
    site: str | None
    reason: R
    detail: str
    received_at: datetime
    payload_head: bytes

    def notice(self, *, encoding: str) -> tuple[str, bytes]:
        """Contract §2's `larm/v1/{site}/deadletter` message (the head as text in `encoding`,
        what cannot be decoded replaced); a payload without a valid site goes under
        `_invalid`. Returns the topic and the payload."""
        notice = {
            "topic": self.topic,
            "reason": self.reason,
            "detail": self.detail,
            "received_at": self.received_at.isoformat(),
            "payload_head": self.payload_head.decode(encoding, "replace"),
        }
        return f"larm/v1/{self.site or '_invalid'}/deadletter", orjson.dumps(notice)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedEvent:
    """A valid event as the system received it: the topic's site and the receive time."""

    site: str
    event: DeviceEvent
    received_at: datetime


_new_received = object.__new__
_set_site, _set_event, _set_received_at = (
    vars(ReceivedEvent)[name].__set__ for name in ("site", "event", "received_at")
)


def received(site: str, event: DeviceEvent, received_at: datetime) -> ReceivedEvent:
    """`ReceivedEvent(site=…, event=…, received_at=…)` for ingest's hot path: a frozen
    dataclass's own `__init__` sets each field through `object.__setattr__` (1.2 µs here); this
    sets its slots directly (0.4 µs). The same object (tests/unit/test_event_model.py)."""
    made: ReceivedEvent = _new_received(ReceivedEvent)
    _set_site(made, site)
    _set_event(made, event)
    _set_received_at(made, received_at)
    return made


def event_json_schema() -> dict[str, Any]:
    """JSON Schema of the payload, generated from the model (published under docs/)."""
    schema = TypeAdapter(DeviceEvent).json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://larmkedja.invalid/schema/event-v1.json"
    schema["description"] = (
        "larmkedja contract v1 device event. Topic larm/v1/{site}/{device_id}/events, QoS 1, "
        f"at most {MAX_PAYLOAD_BYTES} bytes of UTF-8 JSON. `data` is checked per kind "
        "(see $defs) and its unknown keys are kept."
    )
    models = sorted(set(DATA_MODELS.values()), key=lambda m: m.__name__)
    schema["$defs"] = {
        **schema.get("$defs", {}),
        **{m.__name__: m.model_json_schema() for m in models},
    }
    schema["x-data-by-kind"] = {k.value: m.__name__ for k, m in sorted(DATA_MODELS.items())}
    return schema


__all__ = [
    "ALARM_KINDS",
    "DEVICE_ID_PATTERN",
    "MAX_PAYLOAD_BYTES",
    "SITE_PATTERN",
    "AlarmData",
    "AlarmKind",
    "AlertKind",
    "BatteryLowData",
    "BatteryReportData",
    "CancelData",
    "CheckOutcome",
    "CheckResultData",
    "DeadLetter",
    "DeviceEvent",
    "HeartbeatData",
    "Kind",
    "ReceivedEvent",
    "ValidationError",
    "event_json_schema",
    "events_topic",
    "received",
]
