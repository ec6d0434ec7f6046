"""What a dead letter keeps of a refused message: no names, caller's number or password."""

from __future__ import annotations

from gateway import dc09_receiver, scaip_receiver, sos_receiver


def test_dc09_keeps_no_user_zone_or_area_name() -> None:
    frame = b'"SIA-DCS"0001L0#1234[#1234|Nri1/MA01^Anna Andersson^]_12:00:00,01-01-2026'
    kept = dc09_receiver.redact(frame)
    assert b"Anna" not in kept
    assert kept.endswith(b"MA01^-^]_12:00:00,01-01-2026")


def test_scaip_keeps_no_caller_number() -> None:
    body = b"<mrq><cid>123</cid><crd>+46701234567</crd><crd>070-1</crd></mrq>"
    assert scaip_receiver.redact(body) == (b"<mrq><cid>123</cid><crd>***</crd><crd>***</crd></mrq>")


def test_sos_access_keeps_no_password() -> None:
    raw = b"<transmittercode>T1</transmittercode><authentication>s3cret</authentication>"
    kept = sos_receiver.redact(raw)
    assert b"s3cret" not in kept
    assert kept.endswith(b"<authentication>***</authentication>")
