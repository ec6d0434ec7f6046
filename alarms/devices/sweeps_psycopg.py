"""Engine sweeps for device supervision: offline deadlines and area power cuts."""

from __future__ import annotations

from alarms.people.lookups_psycopg import absent_at
from larmkedja.db import Conn
from larmkedja.settings import Settings
from larmkedja.sweeps import StatementSweep

# Every device past its deadline goes offline in one statement. Devices of a site in an area
# power cut that are on battery are expected to fall silent: they are not alerted one by one
# (the site's incident covers them); the API and the dashboards still show each. A device whose
# person is away (an absence window, migration 0012) is not declared offline while the absence
# lasts: its deadline stays passed, so if it is still silent when the absence ends, the first
# sweep after that declares it.
# A device whose row ingest holds locked is skipped: its event is being stored, so it is alive
# (if not, the next sweep takes it). Waiting instead deadlocked with ingest's liveness upsert,
# which locks in device_id order (seen twice in a 30-minute soak).
FIRE_OFFLINE = f"""
WITH due AS (
    SELECT device_id FROM devices
    WHERE online AND offline_due_at <= now()
      AND NOT {absent_at("devices.device_id", "now()")}
    ORDER BY device_id
    FOR UPDATE SKIP LOCKED
), gone AS (
    UPDATE devices d
    SET online = false, online_changed_at = now(), version = d.version + 1
    FROM due
    WHERE d.device_id = due.device_id AND d.online AND d.offline_due_at <= now()
    RETURNING d.device_id, d.site, d.last_seen, d.on_mains,
              coalesce(d.heartbeat_interval_s, %(default_s)s) AS period_s
)
SELECT larm_device_offline(g.device_id, g.site, g.last_seen, g.period_s, %(unanswered_s)s)
FROM gone g
WHERE g.on_mains OR NOT EXISTS (
    SELECT 1 FROM alerts a
    WHERE a.kind = 'site.power_cut' AND a.subject = g.site AND a.resolved_at IS NULL)
"""  # noqa: S608 - SQL of constants


class OfflineSweep(StatementSweep):
    """`device.offline` after LARM_HEARTBEAT_MISSES missed periods (deadline in the row)."""

    name = "device_offline"
    statement = FIRE_OFFLINE

    @staticmethod
    def params(settings: Settings) -> dict[str, object]:
        return {
            "default_s": settings.heartbeat_default_s,
            "unanswered_s": settings.unanswered_alert_s,
        }


POWER_CUTS = """
SELECT a.subject, (SELECT count(*) FROM devices d WHERE d.site = a.subject AND NOT d.on_mains)
FROM alerts a WHERE a.kind = 'site.power_cut' AND a.resolved_at IS NULL
"""


class PowerCutSweep:
    """Ends a site's power-cut incident once fewer than LARM_POWER_CUT_DEVICES are on battery."""

    name = "site_power_cut"

    def __init__(self, *, settings: Settings) -> None:
        self._threshold = settings.power_cut_devices

    def run(self, conn: Conn) -> int:
        ended = 0
        for site, on_battery in conn.execute(POWER_CUTS).fetchall():
            if int(on_battery) < self._threshold:
                conn.execute("SELECT larm_resolve_power_cut(%s, %s)", (site, int(on_battery)))
                ended += 1
        return ended
