"""`check.result` events, in the ingest transaction: each result matches one expected check."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.types.json import Jsonb

from alarms.night.checks_psycopg import (
    CHECK_COLUMNS,
    LATE_RESULT,
    RAISE_ALERT,
    CheckRules,
    check_from_row,
)
from alarms.night.rules import CheckState, on_result
from larmkedja.db import Cursor
from larmkedja.events import AlertKind, CheckResultData, Kind, ReceivedEvent
from larmkedja.settings import Settings

FIND_FOR_RESULT = f"""
SELECT {CHECK_COLUMNS}
FROM supervision_checks c JOIN supervision_plans p USING (plan_id)
WHERE c.plan_id = %(plan_id)s
  AND (abs(extract(epoch FROM c.scheduled_for - %(sf)s)) <= p.window_minutes * 60
       OR (c.state = 'not_seen'
           AND abs(extract(epoch FROM c.recheck_due_at - %(sf)s)) <= p.window_minutes * 60))
ORDER BY abs(extract(epoch FROM c.scheduled_for - %(sf)s))
LIMIT 1
FOR UPDATE OF c
"""  # noqa: S608 - constant columns


class SupervisionProcessor:
    """`check.result` events, in the ingest transaction: each matches one expected check."""

    def __init__(self, *, settings: Settings) -> None:
        self._rules = CheckRules(settings=settings)

    def process(self, cur: Cursor, notable: Sequence[ReceivedEvent]) -> None:
        for received in notable:
            if received.event.kind is Kind.CHECK_RESULT:
                self._result(cur, received)

    def _result(self, cur: Cursor, r: ReceivedEvent) -> None:
        data = r.event.typed_data()
        if not isinstance(data, CheckResultData):  # pragma: no cover - the parser checked it
            return
        cur.execute(FIND_FOR_RESULT, {"plan_id": data.plan_id, "sf": data.scheduled_for})
        row = cur.fetchone()
        if row is None or row[4] != r.event.device_id:
            why = "no such check" if row is None else "sent by another device than the plan's"
            details = Jsonb(
                {
                    "plan_id": data.plan_id,
                    "device_id": r.event.device_id,
                    "scheduled_for": data.scheduled_for.isoformat(),
                    "why": why,
                }
            )
            cur.execute(
                RAISE_ALERT,
                (
                    r.site,
                    AlertKind.SUPERVISION_RESULT_UNMATCHED.value,
                    "warning",
                    f"event:{r.event.event_id}",
                    details,
                ),
            )
            return
        check = check_from_row(row)
        deadline = check.window_end if check.state is CheckState.PENDING else check.recheck_deadline
        decision = on_result(check.state, data.outcome)
        if decision is None or (deadline is not None and r.received_at > deadline):
            cur.execute(LATE_RESULT, (r.received_at, check.check_id))
            return
        self._rules.apply(cur, check, decision, at=r.received_at, result=data)
