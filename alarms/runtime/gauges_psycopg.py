"""Gauges read from the database by the engine every few seconds: devices by state, the
distribution of backup estimates, tonight's checks, open and overdue escalations."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeHistogramMetricFamily
from prometheus_client.registry import Collector

from larmkedja.db import Conn
from larmkedja.metrics import gauge
from larmkedja.settings import Settings

DEVICE_STATES = ("online", "offline", "on_battery", "backup_below_spec", "link_lost")
DEVICES = """
SELECT count(*) FILTER (WHERE online), count(*) FILTER (WHERE NOT online),
       count(*) FILTER (WHERE NOT on_mains), count(*) FILTER (WHERE backup_below_spec),
       count(*) FILTER (WHERE NOT link_ok)
FROM devices
"""
BACKUP_BUCKETS = (6, 12, 24, 36, 48, 72, 96)
BACKUP_HISTOGRAM = f"""
SELECT {", ".join(f"count(*) FILTER (WHERE backup_hours_estimate <= {b})" for b in BACKUP_BUCKETS)},
       count(backup_hours_estimate), coalesce(sum(backup_hours_estimate), 0)
FROM devices
"""  # noqa: S608 - the buckets are constants
CHECK_STATES = ("pending", "done_ok", "not_seen", "rechecked_ok", "missed", "escalated")
# The current night, as `alarms.night.rules.night_of` names it: the local date of 12 h ago.
CHECKS = """
SELECT state, count(*) FROM supervision_checks
WHERE night = ((now() AT TIME ZONE %s) - interval '12 hours')::date
GROUP BY state
"""
ESCALATIONS = """
SELECT state, count(*), count(*) FILTER (WHERE state = 'open' AND ack_deadline < now())
FROM escalations WHERE state IN ('open', 'acknowledged', 'arrived') GROUP BY state
"""


class _BackupHistogram(Collector):
    """`larm_devices_backup_hours`: a gauge histogram (devices now, by hours of backup)."""

    def __init__(self) -> None:
        self.buckets: list[tuple[str, float]] = []
        self.total = 0.0

    def collect(self) -> Iterator[GaugeHistogramMetricFamily]:
        family = GaugeHistogramMetricFamily(
            "larm_devices_backup_hours",
            "Devices by estimated hours of battery backup (left now if on battery, else if "
            "mains went now).",
        )
        if self.buckets:
            family.add_metric([], self.buckets, gsum_value=self.total)
        yield family


class GaugeSweep:
    """Reads the whole device registry, so it runs every `every` ticks, not every tick."""

    name = "gauges"

    def __init__(self, *, settings: Settings, registry: CollectorRegistry, every: int = 5) -> None:
        self._tz = settings.timezone
        self._every = every
        self._ticks = 0
        self.devices = gauge(registry, "larm_devices", "Registered devices by state.", "state")
        self.checks = gauge(
            registry,
            "larm_supervision_checks",
            "The current night's expected checks by state.",
            "state",
        )
        self.escalations = gauge(
            registry, "larm_escalations_open", "Escalations not ended, by state.", "state"
        )
        self.overdue = gauge(
            registry,
            "larm_escalations_overdue",
            "Open escalations past their acknowledgement deadline.",
        )
        self.backup = _BackupHistogram()
        registry.register(self.backup)

    def run(self, conn: Conn) -> int:
        self._ticks += 1
        if self._ticks % self._every != 1:
            return 0
        row = conn.execute(DEVICES).fetchone() or (0,) * len(DEVICE_STATES)
        for state, value in zip(DEVICE_STATES, row, strict=True):
            self.devices.labels(state).set(int(value))
        b = conn.execute(BACKUP_HISTOGRAM).fetchone()
        if b:
            les = [*map(str, BACKUP_BUCKETS), "+Inf"]
            self.backup.buckets = [(le, float(v)) for le, v in zip(les, b[:-1], strict=True)]
            self.backup.total = float(b[-1])
        counts: dict[str, int] = dict(conn.execute(CHECKS, (self._tz,)).fetchall())
        for state in CHECK_STATES:
            self.checks.labels(state).set(int(counts.get(state, 0)))
        open_by_state = {"open": 0, "acknowledged": 0, "arrived": 0}
        overdue = 0
        for state, n, late in conn.execute(ESCALATIONS).fetchall():
            open_by_state[state] = int(n)
            overdue += int(late)
        for state, n in open_by_state.items():
            self.escalations.labels(state).set(n)
        self.overdue.set(overdue)
        return 0
