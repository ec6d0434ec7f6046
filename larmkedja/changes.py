"""The change notice: what the database says on `larm_changes` when an alarm or an escalation
changes (`larm_notify_change`, migration 0002), read by the API's live stream. Delivered on
commit, whichever process made the change."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

import orjson

CHANNEL = "larm_changes"


class Entity(enum.StrEnum):
    ALARM = "alarm"
    ESCALATION = "escalation"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeNotice:
    entity: Entity
    id: uuid.UUID
    op: str = "update"

    @classmethod
    def parse(cls, payload: str) -> ChangeNotice | None:
        """The notice in a NOTIFY payload; None for anything else (never raises)."""
        try:
            found = orjson.loads(payload)
            return cls(
                entity=Entity(found["entity"]),
                id=uuid.UUID(str(found["id"])),
                op=str(found.get("op", "update")),
            )
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError):
            return None
