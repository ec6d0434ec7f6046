"""The gateway's pure security rules (issue 18): per-source caps and rate limits, what the
registry keeps of a sender's secret, SIP digest."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from gateway import credentials, sip_digest
from gateway.credentials import ServerKey
from gateway.limits import Slots, TokenBuckets, source_key
from gateway.sip_digest import Credentials, Verdict

KEY = ServerKey.of("a unit test server key, 32 characters")
OTHER_KEY = ServerKey.of("another server key, 32 characters long")


def test_a_source_is_an_ipv4_address_or_an_ipv6_64() -> None:
    assert source_key("192.0.2.7") == "192.0.2.7"
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::9")
    assert source_key("2001:db8:1:2::1") != source_key("2001:db8:1:3::1")
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key("fe80::1%eth0") == source_key("fe80::2")
    assert source_key("not an address") == "not an address"


@given(st.lists(st.tuples(st.booleans(), st.sampled_from("abc")), max_size=200))
def test_slots_never_hold_more_than_their_caps(steps: list[tuple[bool, str]]) -> None:
    slots = Slots(total=5, per_source=2)
    held: dict[str, int] = {}
    for take, source in steps:
        if take:
            refused = slots.acquire(source)
            if refused is None:
                held[source] = held.get(source, 0) + 1
            else:
                full = sum(held.values()) >= 5 or held.get(source, 0) >= 2
                assert full, refused
        elif held.get(source):
            slots.release(source)
            held[source] -= 1
        else:
            slots.release(source)  # a release without a slot changes nothing
        assert slots.used == sum(held.values()) <= 5
        assert all(n <= 2 for n in held.values())


def test_a_source_over_its_rate_is_refused_and_others_are_not() -> None:
    buckets = TokenBuckets(per_minute=10, total_per_minute=1000)
    assert sum(buckets.take("a", now=0.0) for _ in range(100)) == 10  # the burst
    assert buckets.take("b", now=0.0)
    assert not buckets.take("a", now=5.0)
    assert buckets.take("a", now=6.0)  # one a minute / 10: one per 6 s
    assert not buckets.take("a", now=6.5)


def test_all_sources_together_are_bounded_too_and_memory_is_bounded() -> None:
    buckets = TokenBuckets(per_minute=10, total_per_minute=25, max_sources=100)
    taken = sum(buckets.take(f"s{i}", now=0.0) for i in range(1000))
    assert taken == 25
    assert len(buckets._buckets) == 100


def test_sos_passwords_are_kept_as_an_hmac_under_the_server_key() -> None:
    record = credentials.password_record("Abcdefgh1234567", KEY)
    assert record.startswith("hmac-sha256$")
    assert hashlib.sha256(b"Abcdefgh1234567").hexdigest() not in record
    assert credentials.password_matches(record, "Abcdefgh1234567", KEY)
    assert not credentials.password_matches(record, "Abcdefgh1234568", KEY)
    assert not credentials.password_matches(record, "Abcdefgh1234567", OTHER_KEY)
    assert not credentials.password_matches(None, "Abcdefgh1234567", KEY)
    assert not credentials.password_matches("digest-md5$00", "Abcdefgh1234567", KEY)


def test_a_legacy_hash_is_accepted_and_upgraded_without_the_password() -> None:
    legacy = hashlib.sha256(b"Abcdefgh1234567").hexdigest()
    assert credentials.is_legacy(legacy)
    assert credentials.password_matches(legacy, "Abcdefgh1234567", KEY)
    upgraded = credentials.upgraded(legacy, KEY)
    assert upgraded == credentials.password_record("Abcdefgh1234567", KEY)
    assert not credentials.is_legacy(upgraded)


def test_scaip_keeps_the_digest_ha1() -> None:
    record = credentials.digest_record("123", "secret")
    ha1 = hashlib.md5(b"123:larmkedja:secret", usedforsecurity=False).hexdigest()
    assert credentials.ha1_of(record) == ha1
    assert credentials.ha1_of(None) is None
    assert credentials.ha1_of("hmac-sha256$00") is None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def test_the_rfc_2617_example_response() -> None:
    cred = Credentials(
        username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", qop="auth",
        nc="00000001", cnonce="0a4f113b",
    )  # fmt: skip
    ha1 = _md5("Mufasa:testrealm@host.com:Circle Of Life")
    assert sip_digest.expected(cred, ha1=ha1, method="GET", body=b"") == cred.response


def test_the_response_sipp_computed_for_auth_int() -> None:
    """What sipp 3.6 sent answering a challenge (qop offered "auth,auth-int", it chose
    auth-int) for user 123, password `secret`, a MESSAGE with this body."""
    header = (
        'Digest username="123",realm="larmkedja",cnonce="6b8b4567",nc=00000001,qop=auth-int,'
        'uri="sip:127.0.0.1:15999",nonce="abc123",response="74baeb4bb9698e3a0e1213aa0a45c405",'
        "algorithm=MD5"
    )
    cred = sip_digest.parse_authorization(header)
    assert cred is not None and cred.qop == "auth-int"
    ha1 = credentials.ha1_of(credentials.digest_record("123", "secret"))
    assert ha1 is not None
    body = b"<mrq><ref>1</ref></mrq>\r\n"
    assert sip_digest.expected(cred, ha1=ha1, method="MESSAGE", body=body) == cred.response
    assert sip_digest.expected(cred, ha1=ha1, method="MESSAGE", body=b"other") != cred.response


def _answer(nonce: str, *, password: str | None = None, body: bytes = b"<mrq/>") -> Credentials:
    ha1 = _md5(f"123:larmkedja:{password or 'secret'}")
    ha2 = _md5(f"MESSAGE:sip:r:{hashlib.md5(body, usedforsecurity=False).hexdigest()}")
    response = _md5(f"{ha1}:{nonce}:00000001:c1:auth-int:{ha2}")
    return Credentials(
        username="123", realm="larmkedja", nonce=nonce, uri="sip:r", response=response,
        qop="auth-int", nc="00000001", cnonce="c1",
    )  # fmt: skip


def test_a_nonce_is_ours_and_fresh_or_the_credentials_are_refused() -> None:
    ha1 = credentials.ha1_of(credentials.digest_record("123", "secret"))
    nonce = sip_digest.nonce(KEY.nonces, now=1000.0)

    def verdict(cred: Credentials, *, now: float = 1010.0, ha1: str | None = ha1) -> Verdict:
        return sip_digest.verify(
            cred, ha1=ha1, method="MESSAGE", body=b"<mrq/>", key=KEY.nonces, now=now,
            lifetime_s=300,
        )  # fmt: skip

    assert verdict(_answer(nonce)) is Verdict.OK
    assert verdict(_answer(nonce), now=1400.0) is Verdict.STALE
    assert verdict(_answer(nonce, password="wrong")) is Verdict.BAD
    assert verdict(_answer(nonce, body=b"<other/>")) is Verdict.BAD
    assert verdict(_answer(nonce), ha1=None) is Verdict.BAD  # unknown user: the same verdict
    forged = sip_digest.nonce(OTHER_KEY.nonces, now=1000.0)
    assert verdict(_answer(forged)) is Verdict.BAD
    assert "stale=true" in sip_digest.challenge(KEY.nonces, now=1.0, stale=True)


@given(st.text(max_size=300))
def test_any_authorization_header_is_credentials_or_none(text: str) -> None:
    for header in (text, "Digest " + text, f'Digest username="1",realm="r",{text}'):
        cred = sip_digest.parse_authorization(header)
        assert cred is None or isinstance(cred.username, str)
