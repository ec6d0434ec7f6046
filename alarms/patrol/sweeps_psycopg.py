"""The night patrol's deadline: an escalation nobody acknowledges is published again and the
supervisor is told, every LARM_PATROL_ACK_MINUTES (run by the engine each tick)."""

from __future__ import annotations

from larmkedja.settings import Settings
from larmkedja.sweeps import StatementSweep

FIRE_UNACKNOWLEDGED = """
WITH due AS (
    UPDATE escalations
    SET unack_alerts = unack_alerts + 1,
        ack_due_at = now() + make_interval(secs => %(ack_s)s),
        version = version + 1
    WHERE state = 'open' AND ack_due_at <= now()
    RETURNING escalation_id
)
SELECT larm_escalation_unacknowledged(escalation_id) FROM due
"""


class UnacknowledgedSweep(StatementSweep):
    """`escalation.unacknowledged` to the supervisor and the escalation published again, every
    LARM_PATROL_ACK_MINUTES while the patrol has not acknowledged it."""

    name = "escalation_unacknowledged"
    statement = FIRE_UNACKNOWLEDGED

    @staticmethod
    def params(settings: Settings) -> dict[str, object]:
        return {"ack_s": settings.patrol_ack_minutes * 60}
