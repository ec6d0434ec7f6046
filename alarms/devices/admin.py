"""`larmkedja device provision|revoke`: a device's own MQTT credentials, shown once."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from alarms.devices.credentials_mosquitto import AuthError, BrokerAuth
from larmkedja.settings import Settings

REGISTER = """
INSERT INTO device_registrations (device_id, site) VALUES (%s, %s)
ON CONFLICT (device_id) DO UPDATE SET site = EXCLUDED.site, provisioned_at = now(),
                                      revoked_at = NULL
"""
UNREGISTER = "UPDATE device_registrations SET revoked_at = now() WHERE device_id = %s"
AUDIT = """
INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
VALUES ('cli', 'admin', %s, 'device', %s, %s)
"""


def broker_auth(settings: Settings) -> BrokerAuth:
    if not settings.mqtt_auth_dir:
        raise AuthError("no broker to provision on: set LARM_MQTT_AUTH_DIR (source .state/env)")
    pid = settings.mqtt_broker_pid_file
    return BrokerAuth(
        directory=Path(settings.mqtt_auth_dir),
        pid_file=Path(pid) if pid else None,
        more_pid_files=[Path(p) for p in settings.mqtt_more_broker_pid_files],
    )


def provision(settings: Settings, *, site: str, device_id: str) -> dict[str, object]:
    """Create (or renew) a device's credentials; the password is returned once, stored hashed."""
    creds = broker_auth(settings).provision(site=site, device_id=device_id)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(REGISTER, (device_id, site))
        conn.execute(AUDIT, ("device.provision", device_id, Jsonb({"site": site})))
    return {
        "device_id": creds.device_id,
        "site": creds.site,
        "username": creds.username,
        "password": creds.password,
        "topic": creds.topic,
        "mqtt_host": settings.mqtt_host,
        "mqtt_port": settings.mqtt_port,
    }


def revoke(settings: Settings, *, device_id: str) -> bool:
    revoked = broker_auth(settings).revoke(device_id=device_id)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(UNREGISTER, (device_id,))
        conn.execute(AUDIT, ("device.revoke", device_id, Jsonb({"was_provisioned": revoked})))
    return revoked
