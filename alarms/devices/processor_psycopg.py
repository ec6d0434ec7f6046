"""Device state from events, inside the ingest transaction: the registry, liveness, mains and
battery. Liveness is one set-based statement per batch over `ingest_new` (every event of a
device proves it is alive); the rarer kinds (mains, battery) are applied one by one in the
order they were received.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.types.json import Jsonb

from alarms.devices.battery import RateSource, Reading, below_spec, estimate
from larmkedja.db import Cursor
from larmkedja.events import AlertKind, BatteryLowData, BatteryReportData, Kind, ReceivedEvent
from larmkedja.settings import Settings

# Registers new devices and moves each device's offline deadline; returns the devices that
# were offline and are now back (their alert and technical alarm end). A device's latest event
# and latest heartbeat are each picked by one sort (`DISTINCT ON`), not by sorting inside an
# `array_agg` per device: 2 µs less per event in `bench --parts store`.
UPSERT_LIVENESS = """
WITH latest AS (
    SELECT DISTINCT ON (device_id) device_id, site, received_at AS seen
    FROM ingest_new
    ORDER BY device_id, received_at DESC
), beat AS (
    SELECT DISTINCT ON (device_id) device_id, (data->>'interval_s')::float8 AS interval_s
    FROM ingest_new
    WHERE kind = 'heartbeat' AND jsonb_typeof(data->'interval_s') = 'number'
    ORDER BY device_id, received_at DESC
), batch AS (
    SELECT l.device_id, l.site, l.seen, b.interval_s
    FROM latest l LEFT JOIN beat b USING (device_id)
), up AS (
    INSERT INTO devices AS d (device_id, site, first_seen, last_seen, heartbeat_interval_s,
                              offline_due_at)
    SELECT device_id, site, seen, seen, interval_s,
           seen + make_interval(secs => coalesce(interval_s, %(default_s)s) * %(misses)s)
    FROM batch
    ORDER BY device_id  -- one lock order for every ingest process
    ON CONFLICT (device_id) DO UPDATE SET
        site = EXCLUDED.site,
        last_seen = greatest(d.last_seen, EXCLUDED.last_seen),
        heartbeat_interval_s = coalesce(EXCLUDED.heartbeat_interval_s, d.heartbeat_interval_s),
        offline_due_at = greatest(d.offline_due_at, EXCLUDED.last_seen + make_interval(
            secs => coalesce(EXCLUDED.heartbeat_interval_s, d.heartbeat_interval_s,
                             %(default_s)s) * %(misses)s)),
        online = true,
        online_changed_at = CASE WHEN d.online THEN d.online_changed_at ELSE now() END,
        version = CASE WHEN d.online THEN d.version ELSE d.version + 1 END
    RETURNING d.device_id, (d.online_changed_at = now() AND d.xmax::text <> '0') AS back
)
SELECT device_id FROM up WHERE back
"""

DEVICE_BACK = "SELECT larm_device_back(%s)"

SET_MAINS_LOST = """
UPDATE devices SET on_mains = false, mains_lost_at = coalesce(mains_lost_at, %(at)s),
                   version = version + 1
WHERE device_id = %(device_id)s
RETURNING site, mains_lost_at
"""
SET_MAINS_RESTORED = """
UPDATE devices SET on_mains = true, mains_lost_at = NULL, version = version + 1
WHERE device_id = %(device_id)s AND NOT on_mains
RETURNING site
"""
RECENT_LOSSES = """
SELECT count(*),
       EXISTS (SELECT 1 FROM alerts WHERE kind = 'site.power_cut' AND subject = %(site)s
               AND resolved_at IS NULL)
FROM devices
WHERE site = %(site)s AND NOT on_mains
  AND mains_lost_at > %(at)s - make_interval(secs => %(window_s)s)
"""
# Ingest's bulk writers store different devices at once, each counting the area's devices on
# battery in its own transaction: without this lock each sees only its own (tests/integration/
# test_power_cut_writers.py) and a power cut is up to writers x (threshold - 1) alerts. Held to
# the end of the transaction, and only by one that stores a mains loss; one key for every area,
# so two writers never wait on each other's areas in opposite orders.
POWER_CUT_LOCK = "SELECT pg_advisory_xact_lock(%s)"
POWER_CUT_LOCK_KEY = 0x6C61726D_70637574  # "larm" "pcut"
RAISE_POWER_CUT = "SELECT larm_raise_power_cut(%s, %s, %s)"
RAISE_ALERT = "SELECT larm_raise_alert(%s, %s, %s, %s, %s)"
RESOLVE_ALERT = "SELECT larm_resolve_alert(%s, %s, %s)"

DEVICE_BATTERY_STATE = """
SELECT on_mains, mains_lost_at, discharge_pct_per_h FROM devices
WHERE device_id = %s FOR UPDATE
"""
OUTAGE_READINGS = """
SELECT device_ts, (data->>'percent')::float8 FROM events
WHERE device_id = %(device_id)s AND kind = 'battery.report' AND received_at >= %(since)s
ORDER BY device_ts
"""
SET_BATTERY = """
UPDATE devices SET battery_percent = %(percent)s, battery_reported_at = %(at)s,
    discharge_pct_per_h = coalesce(%(observed)s, discharge_pct_per_h),
    backup_hours_estimate = %(hours_left)s, full_battery_hours = %(full)s,
    rate_source = %(source)s, backup_below_spec = %(below)s, version = version + 1
WHERE device_id = %(device_id)s
"""


class DeviceProcessor:
    def __init__(self, *, settings: Settings) -> None:
        self._s = settings

    def process(self, cur: Cursor, notable: Sequence[ReceivedEvent]) -> None:
        self._liveness(cur)
        for received in notable:
            kind = received.event.kind
            if kind is Kind.POWER_MAINS_LOST:
                self._mains_lost(cur, received)
            elif kind is Kind.POWER_MAINS_RESTORED:
                self._mains_restored(cur, received)
            elif kind is Kind.BATTERY_REPORT:
                self._battery_report(cur, received)
            elif kind is Kind.BATTERY_LOW:
                self._battery_low(cur, received)
            elif kind in (Kind.LINK_LOST, Kind.LINK_RESTORED):
                cur.execute(
                    "UPDATE devices SET link_ok = %s, version = version + 1 WHERE device_id = %s",
                    (kind is Kind.LINK_RESTORED, received.event.device_id),
                )

    def _liveness(self, cur: Cursor) -> None:
        """Every new event of the batch (in `ingest_new`) proves its device alive."""
        cur.execute(
            UPSERT_LIVENESS,
            {"default_s": self._s.heartbeat_default_s, "misses": self._s.heartbeat_misses},
        )
        for (device_id,) in cur.fetchall():
            cur.execute(DEVICE_BACK, (device_id,))

    def _mains_lost(self, cur: Cursor, r: ReceivedEvent) -> None:
        device_id = r.event.device_id
        cur.execute(SET_MAINS_LOST, {"at": r.received_at, "device_id": device_id})
        row = cur.fetchone()
        if row is None:
            return
        site = str(row[0])
        cur.execute(POWER_CUT_LOCK, (POWER_CUT_LOCK_KEY,))  # then count what others committed
        cur.execute(
            RECENT_LOSSES,
            {"site": site, "at": r.received_at, "window_s": self._s.power_cut_window_s},
        )
        counted = cur.fetchone()
        recent, cut_active = (int(counted[0]), bool(counted[1])) if counted else (0, False)
        if cut_active or recent >= self._s.power_cut_devices:
            # One incident for the area instead of one alert per device.
            cur.execute(RAISE_POWER_CUT, (site, recent, self._s.unanswered_alert_s))
            return
        details = Jsonb({"device_id": device_id, "mains_lost_at": r.received_at.isoformat()})
        cur.execute(
            RAISE_ALERT, (site, AlertKind.DEVICE_ON_BATTERY.value, "warning", device_id, details)
        )

    def _mains_restored(self, cur: Cursor, r: ReceivedEvent) -> None:
        device_id = r.event.device_id
        cur.execute(SET_MAINS_RESTORED, {"device_id": device_id})
        details = Jsonb({"restored_at": r.received_at.isoformat()})
        cur.execute(RESOLVE_ALERT, (AlertKind.DEVICE_ON_BATTERY.value, device_id, details))

    def _battery_report(self, cur: Cursor, r: ReceivedEvent) -> None:
        data = r.event.typed_data()
        if not isinstance(data, BatteryReportData):  # pragma: no cover - the parser checked it
            return
        device_id = r.event.device_id
        cur.execute(DEVICE_BATTERY_STATE, (device_id,))
        state = cur.fetchone()
        if state is None:
            return
        on_mains, mains_lost_at, learned = bool(state[0]), state[1], state[2]
        if data.on_mains is not None and data.on_mains != on_mains:
            # The report is the device's own word on its mains.
            (self._mains_restored if data.on_mains else self._mains_lost)(cur, r)
            on_mains = data.on_mains
            mains_lost_at = None if on_mains else (mains_lost_at or r.received_at)
        readings: list[Reading] = []
        if not on_mains and mains_lost_at is not None:
            cur.execute(OUTAGE_READINGS, {"device_id": device_id, "since": mains_lost_at})
            readings = [Reading(at=row[0], percent=float(row[1])) for row in cur.fetchall()]
        est = estimate(
            percent=data.percent,
            outage_readings=readings,
            known_rate=learned,
            spec_hours=self._s.battery_spec_hours,
        )
        below = below_spec(
            est,
            spec_hours=self._s.battery_spec_hours,
            on_mains=on_mains,
            min_hours_left=self._s.backup_alert_hours,
        )
        cur.execute(
            SET_BATTERY,
            {
                "below": below,
                "percent": data.percent,
                "at": r.received_at,
                "observed": est.rate_pct_per_h if est.source is RateSource.OBSERVED else None,
                "hours_left": est.hours_left,
                "full": est.full_battery_hours,
                "source": est.source.value,
                "device_id": device_id,
            },
        )
        details: dict[str, object] = {
            "hours_left": round(est.hours_left, 2),
            "full_battery_hours": round(est.full_battery_hours, 2),
            "rate_source": est.source.value,
            "spec_hours": self._s.battery_spec_hours,
        }
        self._backup_alert(cur, r, below=below, details=details)
        if data.percent >= self._s.battery_ok_percent:
            cur.execute(
                RESOLVE_ALERT,
                (AlertKind.BATTERY_LOW.value, device_id, Jsonb({"percent": data.percent})),
            )

    def _backup_alert(
        self, cur: Cursor, r: ReceivedEvent, *, below: bool, details: dict[str, object]
    ) -> None:
        device_id = r.event.device_id
        if below:
            body = Jsonb({"device_id": device_id, **details})
            cur.execute(
                RAISE_ALERT,
                (r.site, AlertKind.DEVICE_BACKUP_BELOW_SPEC.value, "warning", device_id, body),
            )
        else:
            cur.execute(
                RESOLVE_ALERT, (AlertKind.DEVICE_BACKUP_BELOW_SPEC.value, device_id, Jsonb(details))
            )

    def _battery_low(self, cur: Cursor, r: ReceivedEvent) -> None:
        data = r.event.typed_data()
        percent = data.percent if isinstance(data, BatteryLowData) else None
        details = Jsonb({"device_id": r.event.device_id, "percent": percent})
        cur.execute(
            RAISE_ALERT,
            (r.site, AlertKind.BATTERY_LOW.value, "warning", r.event.device_id, details),
        )
