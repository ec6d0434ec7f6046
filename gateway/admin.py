"""`larmkedja sender add|revoke|list`: the gateway's sender registry, audited.

`add` makes the secret when none is given and prints it once: an SOS Access password (15
characters; only its hash is kept) or an SIA DC-09 AES key (hex; kept, the gateway needs it).
"""

from __future__ import annotations

import re
import secrets
import string

import psycopg
from psycopg.types.json import Jsonb

from gateway.errors import SenderError
from gateway.model import Protocol, password_hash
from larmkedja.events import DEVICE_ID_PATTERN, SITE_PATTERN
from larmkedja.settings import Settings

UPSERT = """
INSERT INTO gateway_senders (protocol, sender_id, site, device_id, secret, heartbeat_s)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (protocol, sender_id) DO UPDATE
SET site = EXCLUDED.site, device_id = EXCLUDED.device_id, secret = EXCLUDED.secret,
    heartbeat_s = EXCLUDED.heartbeat_s, created_at = now(), revoked_at = NULL
"""
REVOKE = """
UPDATE gateway_senders SET revoked_at = now()
WHERE protocol = %s AND sender_id = %s AND revoked_at IS NULL
"""
LIST = """
SELECT protocol, sender_id, site, device_id, heartbeat_s, created_at, revoked_at
FROM gateway_senders ORDER BY protocol, sender_id
"""
AUDIT = """
INSERT INTO audit_log (actor, role, action, subject_type, subject_id, details)
VALUES ('cli', 'admin', %s, 'gateway_sender', %s, %s)
"""
SENDER_IDS = {
    Protocol.SCAIP: re.compile(r"[0-9]{1,16}"),  # the controller id (cid)
    Protocol.SOS_ACCESS: re.compile(r"[^\s<>&]{1,15}"),  # the transmitter code
    Protocol.SIA_DC09: re.compile(r"[0-9A-Za-z]{1,16}"),  # the account
}
_PASSWORD_CHARS = string.ascii_letters + string.digits


def _secret(protocol: Protocol, given: str | None) -> tuple[str | None, str | None]:
    """(stored, shown): what the registry keeps and what the operator is shown once."""
    if protocol is Protocol.SOS_ACCESS:
        password = given or "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(15))
        if len(password) != 15:
            raise SenderError("an SOS Access password is exactly 15 characters")
        return password_hash(password), None if given else password
    if protocol is Protocol.SIA_DC09:
        if given in (None, "", "none"):
            return None, None  # plain DC-09 (no encryption)
        key = secrets.token_hex(16) if given == "generate" else str(given)
        try:
            raw = bytes.fromhex(key)
        except ValueError:
            raise SenderError("an AES key is hex (32, 48 or 64 digits)") from None
        if len(raw) not in (16, 24, 32):
            raise SenderError("an AES key is 128, 192 or 256 bits")
        return key.lower(), key.lower() if given == "generate" else None
    return None, None


def add(
    settings: Settings,
    *,
    protocol: str,
    sender_id: str,
    site: str,
    device_id: str,
    secret: str | None = None,
    heartbeat_s: float | None = None,
) -> dict[str, object]:
    proto = Protocol(protocol)
    if not SENDER_IDS[proto].fullmatch(sender_id):
        raise SenderError(f"not a {proto.value} sender id: {sender_id!r}")
    if not re.fullmatch(SITE_PATTERN, site) or not re.fullmatch(DEVICE_ID_PATTERN, device_id):
        raise SenderError("site or device id does not match contract §1")
    stored, shown = _secret(proto, secret)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(UPSERT, (proto.value, sender_id, site, device_id, stored, heartbeat_s))
        details = {"site": site, "device_id": device_id, "heartbeat_s": heartbeat_s}
        subject = f"{proto.value}:{sender_id}"
        conn.execute(AUDIT, ("gateway.sender.add", subject, Jsonb(details)))
    result: dict[str, object] = {
        "protocol": proto.value,
        "sender_id": sender_id,
        "site": site,
        "device_id": device_id,
    }
    if shown:
        result["password" if proto is Protocol.SOS_ACCESS else "aes_key"] = shown
    return result


def revoke(settings: Settings, *, protocol: str, sender_id: str) -> bool:
    proto = Protocol(protocol)
    with psycopg.connect(settings.database_url) as conn:
        done = conn.execute(REVOKE, (proto.value, sender_id)).rowcount > 0
        subject = f"{proto.value}:{sender_id}"
        conn.execute(AUDIT, ("gateway.sender.revoke", subject, Jsonb({"was_active": done})))
    return done


def listing(settings: Settings) -> list[str]:
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute(LIST).fetchall()
    return [
        f"{p:<10} {s:<16} {site:<16} {dev:<20} hb={hb or '-'} "
        + ("revoked" if revoked else f"since {created:%Y-%m-%d}")
        for p, s, site, dev, hb, created, revoked in rows
    ]
