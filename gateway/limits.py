"""How much any one source may cost the gateway: concurrency caps and rate limits. Pure (the
time is a parameter); `servers.py` and `service.py` apply them.

A source is the sender's network address: an IPv4 address, or an IPv6 /64 (one subscriber's
prefix, so an attacker cannot get a fresh budget from each of its 2^64 addresses). Sender ids
are not sources: they are whatever the message says, so an attacker picks them freely.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

MAX_SOURCES = 10_000  # the rate limiter remembers this many sources (least recent forgotten)


def source_key(host: str) -> str:
    """The budget a peer address draws on: itself (IPv4), its /64 (IPv6), or the text as is."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Slots:
    """At most `total` things at once, and at most `per_source` from one source."""

    def __init__(self, *, total: int, per_source: int) -> None:
        self.total = total
        self.per_source = per_source
        self.used = 0
        self._by_source: dict[str, int] = {}

    def acquire(self, source: str) -> str | None:
        """None when a slot was taken (release it later); else why not: `capacity` (all
        slots in use) or `source_capacity` (this source's share in use)."""
        held = self._by_source.get(source, 0)
        if held >= self.per_source:
            return "source_capacity"
        if self.used >= self.total:
            return "capacity"
        self._by_source[source] = held + 1
        self.used += 1
        return None

    def release(self, source: str) -> None:
        held = self._by_source.get(source, 0)
        if held <= 0:
            return
        if held == 1:
            del self._by_source[source]
        else:
            self._by_source[source] = held - 1
        self.used -= 1


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """A token bucket per source: `per_minute` tokens a minute, at most `per_minute` saved up
    (a burst), plus one bucket every source shares (`total_per_minute`). Bounded memory: the
    least recently seen sources are forgotten past `max_sources` (a forgotten source starts
    with a full bucket, which the shared bucket still bounds)."""

    def __init__(
        self, *, per_minute: float, total_per_minute: float, max_sources: int = MAX_SOURCES
    ) -> None:
        self.per_minute = per_minute
        self.total_per_minute = total_per_minute
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._shared: _Bucket | None = None

    def take(self, source: str, *, now: float) -> bool:
        """Whether `source` may have one more now (and it is then counted)."""
        bucket = self._buckets.pop(source, None)
        if bucket is None:
            bucket = _Bucket(tokens=self.per_minute, at=now)
        _refill(bucket, self.per_minute, now)
        self._buckets[source] = bucket
        if len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)
        if self._shared is None:
            self._shared = _Bucket(tokens=self.total_per_minute, at=now)
        _refill(self._shared, self.total_per_minute, now)
        if bucket.tokens < 1 or self._shared.tokens < 1:
            return False
        bucket.tokens -= 1
        self._shared.tokens -= 1
        return True


def _refill(bucket: _Bucket, per_minute: float, now: float) -> None:
    elapsed = max(0.0, now - bucket.at)
    bucket.tokens = min(per_minute, bucket.tokens + elapsed * per_minute / 60.0)
    bucket.at = now
