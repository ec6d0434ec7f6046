"""The alarm chain's subdomains: `queue` (alarms and answer times), `devices`, `night`
(supervision), `patrol` (escalations), `selfwatch`, `people` (persons, audit) and the engine's
`runtime`. What packages outside the entry points and the API may use is named here."""

from alarms.devices.admin import provision as provision_device
from alarms.devices.admin import revoke as revoke_device
from alarms.devices.credentials_mosquitto import BrokerAuth, Credentials, service_account
from alarms.devices.sweeps_psycopg import OfflineSweep
from alarms.reports.service_level_psycopg import service_level

__all__ = [
    "BrokerAuth",
    "Credentials",
    "OfflineSweep",
    "provision_device",
    "revoke_device",
    "service_account",
    "service_level",
]
