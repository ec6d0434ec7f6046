"""`larmkedja sender add|revoke|list`: the gateway's sender registry, audited.

`add` makes the secret when none is given and prints it once: an SOS Access password (15
characters; only its HMAC under the server key is kept), a SCAIP controller's SIP digest
password (only its HA1 is kept) or an SIA DC-09 AES key (hex; kept, the gateway needs it).
A sender without a secret only with `plain=True` (`--plain`), an administrator's explicit
choice (gateway/credentials.py, docs/protocols.md).
"""

from __future__ import annotations

import re
import secrets
import string

import psycopg
from psycopg.types.json import Jsonb

from gateway.credentials import ServerKey, digest_record, password_record, upgraded
from gateway.errors import SenderError
from gateway.model import Protocol
from larmkedja.events import DEVICE_ID_PATTERN, SITE_PATTERN
from larmkedja.settings import Settings

UPSERT = """
INSERT INTO gateway_senders (protocol, sender_id, site, device_id, secret, heartbeat_s, plain)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (protocol, sender_id) DO UPDATE
SET site = EXCLUDED.site, device_id = EXCLUDED.device_id, secret = EXCLUDED.secret,
    heartbeat_s = EXCLUDED.heartbeat_s, plain = EXCLUDED.plain, created_at = now(),
    revoked_at = NULL
"""
REVOKE = """
UPDATE gateway_senders SET revoked_at = now()
WHERE protocol = %s AND sender_id = %s AND revoked_at IS NULL
"""
LIST = """
SELECT protocol, sender_id, site, device_id, heartbeat_s, created_at, revoked_at, plain,
       protocol = 'sos-access' AND secret ~ '^[0-9a-f]{64}$'
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
LEGACY_HASHES = """
SELECT sender_id, secret FROM gateway_senders
WHERE protocol = 'sos-access' AND secret ~ '^[0-9a-f]{64}$'
"""
# Compare and set: a password changed meanwhile (`sender add`) is left as it is.
UPGRADE_HASH = """
UPDATE gateway_senders SET secret = %s
WHERE protocol = 'sos-access' AND sender_id = %s AND secret = %s
"""
_PASSWORD_CHARS = string.ascii_letters + string.digits


def _password(length: int) -> str:
    return "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(length))


def server_key(settings: Settings) -> ServerKey:
    if settings.gateway_secret_key is None:
        raise SenderError(
            "LARM_GATEWAY_SECRET_KEY is not set (`source .state/env`, or deploy/.env)"
        )
    return ServerKey.of(settings.gateway_secret_key.get_secret_value())


def _sos_password(given: str | None, settings: Settings) -> tuple[str, str | None]:
    password = given or _password(15)
    if len(password) != 15:
        raise SenderError("an SOS Access password is exactly 15 characters")
    return password_record(password, server_key(settings)), None if given else password


def _aes_key(given: str | None) -> tuple[str, str | None]:
    key = secrets.token_hex(16) if given in (None, "generate") else str(given)
    try:
        raw = bytes.fromhex(key)
    except ValueError:
        raise SenderError("an AES key is hex (32, 48 or 64 digits)") from None
    if len(raw) not in (16, 24, 32):
        raise SenderError("an AES key is 128, 192 or 256 bits")
    return key.lower(), key.lower() if given in (None, "generate") else None


def _secret(
    protocol: Protocol, sender_id: str, given: str | None, *, plain: bool, settings: Settings
) -> tuple[str | None, str | None]:
    """(stored, shown): what the registry keeps and what the operator is shown once."""
    if plain:
        if protocol is Protocol.SOS_ACCESS:
            raise SenderError("an SOS Access transmitter always has a password")
        if given:
            raise SenderError("--plain and --secret exclude each other")
        return None, None
    if protocol is Protocol.SOS_ACCESS:
        return _sos_password(given, settings)
    if protocol is Protocol.SIA_DC09:
        return _aes_key(given)
    password = given or _password(20)
    if len(password) < 12:
        raise SenderError("a SIP digest password is at least 12 characters")
    return digest_record(sender_id, password), None if given else password


def add(
    settings: Settings,
    *,
    protocol: str,
    sender_id: str,
    site: str,
    device_id: str,
    secret: str | None = None,
    heartbeat_s: float | None = None,
    plain: bool = False,
) -> dict[str, object]:
    proto = Protocol(protocol)
    if not SENDER_IDS[proto].fullmatch(sender_id):
        raise SenderError(f"not a {proto.value} sender id: {sender_id!r}")
    if not re.fullmatch(SITE_PATTERN, site) or not re.fullmatch(DEVICE_ID_PATTERN, device_id):
        raise SenderError("site or device id does not match contract §1")
    stored, shown = _secret(proto, sender_id, secret, plain=plain, settings=settings)
    with psycopg.connect(settings.database_url) as conn:
        row = (proto.value, sender_id, site, device_id, stored, heartbeat_s, plain)
        conn.execute(UPSERT, row)
        details = {"site": site, "device_id": device_id, "heartbeat_s": heartbeat_s}
        details["plain"] = plain
        subject = f"{proto.value}:{sender_id}"
        conn.execute(AUDIT, ("gateway.sender.add", subject, Jsonb(details)))
    result: dict[str, object] = {
        "protocol": proto.value,
        "sender_id": sender_id,
        "site": site,
        "device_id": device_id,
    }
    if shown:
        result["aes_key" if proto is Protocol.SIA_DC09 else "password"] = shown
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
        + (" plain" if plain else "")
        + (" legacy-hash" if legacy else "")
        for p, s, site, dev, hb, created, revoked, plain, legacy in rows
    ]


def upgrade_passwords(settings: Settings, conninfo: str) -> int:
    """Replace every legacy SOS Access password hash (a bare sha256, from before migration
    0015) by its HMAC under the server key; run by `larmkedja migrate` as the owner. Returns
    how many were replaced. Each row is compared and set, so a concurrent change wins."""
    key = server_key(settings)
    done = 0
    with psycopg.connect(conninfo) as conn:
        for sender_id, old in conn.execute(LEGACY_HASHES).fetchall():
            cur = conn.execute(UPGRADE_HASH, (upgraded(old, key), sender_id, old))
            done += cur.rowcount
        if done:
            conn.execute(AUDIT, ("gateway.sender.rehash", "sos-access:*", Jsonb({"rows": done})))
    return done
