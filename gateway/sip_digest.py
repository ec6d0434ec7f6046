"""SIP digest authentication (RFC 3261 §22, RFC 2617, MD5) of SCAIP controllers. Pure: the time
and the key are parameters.

Nonces are stateless: the time they were made and an HMAC of it under the server key, so any
gateway instance checks any other's, nothing is stored per device, and a device may reuse a
nonce for `lifetime_s` (sending its credentials with the first try, no extra round trip). We
offer `qop="auth,auth-int"`: with auth-int the response covers the body too (the <mrq>), so a
listener on the path cannot put another alarm under a device's credentials; sipp chooses it.
Devices that know only `auth` (or RFC 2069, no qop) are accepted: their response covers the
method and URI, not the body (docs/protocols.md).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from dataclasses import dataclass

from gateway.credentials import REALM

_PARAM = re.compile(r'([A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
_NONCE = re.compile(r"([0-9a-f]{1,12})\.([0-9a-f]{32})")
MAX_HEADER = 2048


class Verdict(enum.Enum):
    OK = "ok"
    STALE = "stale"  # right credentials, expired nonce: the device retries with a new one
    BAD = "bad"


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """An Authorization header's digest parameters."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    qop: str | None = None
    nc: str = ""
    cnonce: str = ""
    algorithm: str = "MD5"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8", "replace"), usedforsecurity=False).hexdigest()


def parse_authorization(value: str | None) -> Credentials | None:
    """The digest credentials of an Authorization header; None if it has none usable."""
    if not value or len(value) > MAX_HEADER:
        return None
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params = {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _PARAM.finditer(rest)}
    try:
        return Credentials(
            username=params["username"],
            realm=params["realm"],
            nonce=params["nonce"],
            uri=params["uri"],
            response=params["response"].lower(),
            qop=params.get("qop") or None,
            nc=params.get("nc", ""),
            cnonce=params.get("cnonce", ""),
            algorithm=params.get("algorithm", "MD5"),
        )
    except KeyError:
        return None


def nonce(key: bytes, *, now: float) -> str:
    stamp = f"{int(now):x}"
    return f"{stamp}.{_sign(key, stamp)}"


def _sign(key: bytes, stamp: str) -> str:
    return hmac.new(key, stamp.encode(), "sha256").hexdigest()[:32]


def nonce_age(key: bytes, value: str, *, now: float) -> float | None:
    """Seconds since we made this nonce; None if we did not make it."""
    match = _NONCE.fullmatch(value)
    if match is None or not hmac.compare_digest(_sign(key, match[1]), match[2]):
        return None
    return now - int(match[1], 16)


def challenge(key: bytes, *, now: float, stale: bool = False) -> str:
    """The WWW-Authenticate value of a 401."""
    fresh = nonce(key, now=now)
    text = f'Digest realm="{REALM}", nonce="{fresh}", algorithm=MD5, qop="auth,auth-int"'
    return text + (", stale=true" if stale else "")


def expected(cred: Credentials, *, ha1: str, method: str, body: bytes) -> str | None:
    """The response a device with this HA1 computes; None for a qop or algorithm we lack."""
    if cred.qop == "auth-int":
        ha2 = _md5(f"{method}:{cred.uri}:{hashlib.md5(body, usedforsecurity=False).hexdigest()}")
    elif cred.qop in (None, "auth"):
        ha2 = _md5(f"{method}:{cred.uri}")
    else:
        return None
    if cred.algorithm.upper() != "MD5":
        return None
    if cred.qop is None:
        return _md5(f"{ha1}:{cred.nonce}:{ha2}")
    return _md5(f"{ha1}:{cred.nonce}:{cred.nc}:{cred.cnonce}:{cred.qop}:{ha2}")


def verify(
    cred: Credentials,
    *,
    ha1: str | None,
    method: str,
    body: bytes,
    key: bytes,
    now: float,
    lifetime_s: float,
) -> Verdict:
    """Whether the device holds the password of `ha1` (None: an unknown user, which gets the
    same work and the same verdict as a wrong password)."""
    want = expected(cred, ha1=ha1 or "0" * 32, method=method, body=body)
    right = want is not None and hmac.compare_digest(want, cred.response)
    if ha1 is None or not right or cred.realm != REALM:
        return Verdict.BAD
    age = nonce_age(key, cred.nonce, now=now)
    if age is None:
        return Verdict.BAD
    if not -5.0 <= age <= lifetime_s:
        return Verdict.STALE
    return Verdict.OK
