"""Senders registered before migration 0015 (issue 18): nothing in the field stops working,
and `larmkedja migrate` with the server key turns the unsalted SOS Access password hashes into
HMACs without knowing the passwords."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from dc09_spt.msg.dc09_msg import dc09_msg
from sos_access.exceptions import NotAuthorized

from tests.conftest import Broker
from tests.gateway.attacks import PASSWORD, dc09_answer, dc09_exchange, sos_client
from tests.gateway.conftest import SERVER_KEY, gateway_stack
from tests.helpers import scalar

pytestmark = pytest.mark.integration

BEFORE_0015 = """
ALTER TABLE gateway_senders DROP CONSTRAINT IF EXISTS gateway_senders_plain_or_secret,
    DROP CONSTRAINT IF EXISTS gateway_senders_sos_access_has_a_password,
    DROP COLUMN IF EXISTS plain;
DELETE FROM schema_migrations WHERE version = 15;
"""
OLD_ROWS = """
INSERT INTO gateway_senders (protocol, sender_id, site, device_id, secret) VALUES
    ('sos-access', 'TXOLD', 'gw', 'old-sos', %s),
    ('sia-dc09', '7001', 'gw', 'old-dc09', NULL),
    ('scaip', '7002', 'gw', 'old-scaip', NULL),
    ('sia-dc09', '7003', 'gw', 'old-dc09-key', '000102030405060708090a0b0c0d0e0f')
"""


def migrate(database_url: str, *, key: str | None) -> str:
    """`larmkedja migrate` as an administrator runs it (the key from the environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LARM_")}
    env["LARM_DATABASE_URL"] = database_url
    if key:
        env["LARM_GATEWAY_SECRET_KEY"] = key
    exe = str(Path(sys.executable).with_name("larmkedja"))
    done = subprocess.run(
        [exe, "migrate"], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def test_senders_from_before_0015_keep_working_and_their_hashes_become_hmacs(
    database_url: str, broker: Broker
) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(BEFORE_0015)
        conn.execute(OLD_ROWS, (hashlib.sha256(PASSWORD.encode()).hexdigest(),))
    migrate(database_url, key=None)  # 0015, without the server key
    secret = "SELECT secret FROM gateway_senders WHERE sender_id = 'TXOLD'"

    with gateway_stack(database_url, broker, gateway_registry_cache_s=0) as gw:
        # Before the server key has been applied, the old hash still lets the transmitter in,
        # and the account that was plain by default still is.
        assert sos_client(gw, "TXOLD").send_alarm(event_code="MA", reference="m-1").status == 0
        block = str(dc09_msg("7001").dc09block(1, "SIA-DCS", "#7001|NMA1]")).encode()
        assert dc09_answer(dc09_exchange(gw, block)) == "ACK"

        migrate(database_url, key=SERVER_KEY)
        stored = str(scalar(database_url, secret))
        assert stored.startswith("hmac-sha256$")
        assert hashlib.sha256(PASSWORD.encode()).hexdigest() not in stored
        assert sos_client(gw, "TXOLD").send_alarm(event_code="MA", reference="m-2").status == 0
        with pytest.raises(NotAuthorized):
            sos_client(gw, "TXOLD", "Wrongpassword15").send_alarm(event_code="MA")
        gw.wait_events("old-sos", 2)
        gw.wait_events("old-dc09", 1)
    plain = "SELECT sender_id FROM gateway_senders WHERE plain ORDER BY sender_id"
    with psycopg.connect(database_url) as conn:
        assert [r[0] for r in conn.execute(plain)] == ["7001", "7002"]  # were plain, still are
    audit = "SELECT count(*) FROM audit_log WHERE action = 'gateway.sender.rehash'"
    assert scalar(database_url, audit) == 1
    assert "password hash" not in migrate(database_url, key=SERVER_KEY)  # nothing left to do
