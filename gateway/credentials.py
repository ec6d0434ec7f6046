"""What the sender registry keeps of each sender's secret, and how a presented one is checked.
Pure: no database, the server key is a parameter.

- **SOS Access** password: `hmac-sha256$` + HMAC-SHA256(K, SHA-256(password)), where K is
  derived from the gateway's server key (`LARM_GATEWAY_SECRET_KEY`), which is not in the
  database: a copy of the registry alone tells nothing, not even for a guessable password.
  HMAC, not scrypt: every alarm and heartbeat logs in, and scrypt per request is tens of
  milliseconds of CPU that a flood of wrong passwords would make us spend. Rows written before
  migration 0015 hold the bare SHA-256 (`legacy`); they are still accepted, and `larmkedja
  migrate` with the server key turns each into its HMAC without knowing the password (the HMAC
  is taken over that very SHA-256).
- **SCAIP** SIP digest: `digest-md5$` + HA1 = MD5(cid ":" realm ":" password) (RFC 2617,
  RFC 3261 §22), what a digest check needs; the password itself is not kept.
- **SIA DC-09**: the AES key in hex, as the gateway must decrypt with it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

REALM = "larmkedja"  # the SIP digest realm: part of every stored HA1, so it never changes
HMAC_PREFIX = "hmac-sha256$"
HA1_PREFIX = "digest-md5$"
_LEGACY = re.compile(r"[0-9a-f]{64}")
_ENCODING = "latin-1"  # SOS Access is ISO 8859-1


@dataclass(frozen=True, slots=True)
class ServerKey:
    """Keys derived from the server key, one per use, so no two uses share a key."""

    passwords: bytes
    nonces: bytes

    @classmethod
    def of(cls, secret: str) -> ServerKey:
        root = secret.encode()
        return cls(
            passwords=hmac.digest(root, b"larmkedja gateway: sos-access passwords", "sha256"),
            nonces=hmac.digest(root, b"larmkedja gateway: sip digest nonces", "sha256"),
        )


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode(_ENCODING, "replace")).hexdigest()


def _mac(key: ServerKey, sha256_hex: str) -> str:
    return hmac.new(key.passwords, sha256_hex.encode(), "sha256").hexdigest()


def password_record(password: str, key: ServerKey) -> str:
    """What the registry keeps of an SOS Access password."""
    return HMAC_PREFIX + _mac(key, _sha256(password))


def password_matches(stored: str | None, password: str, key: ServerKey) -> bool:
    """Whether `password` is the one `stored` was made from. The same work whatever is stored
    (or nothing, for an unknown transmitter), so the time taken tells nobody which it was."""
    given = _sha256(password)
    mac = _mac(key, given)
    if stored and stored.startswith(HMAC_PREFIX):
        return hmac.compare_digest(mac, stored[len(HMAC_PREFIX) :])
    if stored and _LEGACY.fullmatch(stored):
        return hmac.compare_digest(given, stored)
    hmac.compare_digest(mac, mac)
    return False


def is_legacy(stored: str | None) -> bool:
    return stored is not None and _LEGACY.fullmatch(stored) is not None


def upgraded(stored: str, key: ServerKey) -> str:
    """The record of a legacy (bare SHA-256) password, made without the password."""
    if not is_legacy(stored):
        raise ValueError("not a legacy password hash")
    return HMAC_PREFIX + _mac(key, stored)


def digest_record(cid: str, password: str) -> str:
    """What the registry keeps of a SCAIP controller's SIP digest password."""
    ha1 = hashlib.md5(f"{cid}:{REALM}:{password}".encode(), usedforsecurity=False).hexdigest()
    return HA1_PREFIX + ha1


def ha1_of(stored: str | None) -> str | None:
    if stored and stored.startswith(HA1_PREFIX):
        return stored[len(HA1_PREFIX) :]
    return None
