"""SOS Access v4 over TCP, driven by the `sos-access` client from PyPI."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sos_access.client import SOSAccessClient
from sos_access.exceptions import (
    DuplicateAlarm,
    MandatoryDataMissing,
    NotAuthorized,
    PingToOften,
    WrongContent,
)

from tests.gateway.attacks import sos_exchange
from tests.gateway.conftest import GatewayStack
from tests.helpers import wait_until

pytestmark = pytest.mark.integration
PASSWORD = "Abcdefgh1234567"  # 15 characters


def client(gw: GatewayStack, code: str, password: str = PASSWORD) -> SOSAccessClient:
    return SOSAccessClient(
        transmitter_code=code,
        transmitter_type="SV300",
        authentication=password,
        receiver_id="larmkedja",
        receiver_address=(gw.host, gw.port("sos-access")),
        use_single_receiver=True,
    )


def test_alarm_restore_and_heartbeat(gw: GatewayStack) -> None:
    gw.add("sos-access", "TX100", "sos-1", secret=PASSWORD, heartbeat_s=180)
    c = client(gw, "TX100")
    response = c.send_alarm(event_code="MA", reference="ref-1", section="1", detector="2")
    assert response.status == 0
    assert response.reference == "ref-1"
    assert response.arrival_time is not None
    fall = c.send_alarm(event_code="FALL", reference="ref-2", transmitter_time=datetime.now(UTC))
    assert fall.status == 0
    assert c.restore_alarm(event_code="MA", reference="ref-3").status == 0
    assert c.ping(reference="p-1").status == 0
    gw.wait_events("sos-1", 4)
    assert gw.events("sos-1", "alarm.button") == 1
    assert gw.events("sos-1", "alarm.fall") == 1
    assert gw.events("sos-1", "alarm.cancel") == 1
    assert gw.events("sos-1", "heartbeat") == 1
    wait_until(lambda: gw.open_alarms("sos-1") == 2, timeout=10, what="two queue entries")
    interval = gw_scalar(gw, "SELECT heartbeat_interval_s FROM devices WHERE device_id = 'sos-1'")
    assert interval == 180  # the agreed period from the registry keeps it online
    online = gw_scalar(gw, "SELECT online FROM devices WHERE device_id = 'sos-1'")
    assert online is True


def gw_scalar(gw: GatewayStack, sql: str) -> object:
    from tests.helpers import scalar

    return scalar(gw.settings.database_url, sql)


def test_the_same_alarm_again_is_a_duplicate_and_stored_once(gw: GatewayStack) -> None:
    gw.add("sos-access", "TX200", "sos-2", secret=PASSWORD)
    c = client(gw, "TX200")
    assert c.send_alarm(event_code="MA", reference="same-ref").status == 0
    with pytest.raises(DuplicateAlarm):
        c.send_alarm(event_code="MA", reference="same-ref")
    # A new reference is a new press: it folds into the open alarm, never lost.
    assert c.send_alarm(event_code="MA", reference="other-ref").status == 0
    gw.wait_events("sos-2", 2)
    assert gw.events("sos-2") == 2
    wait_until(lambda: gw.open_alarms("sos-2") == 1, timeout=10, what="one queue entry")
    count = gw_scalar(gw, "SELECT event_count FROM alarms WHERE device_id = 'sos-2'")
    assert count == 2


def test_heartbeats_faster_than_allowed_get_101(gw: GatewayStack) -> None:
    gw.add("sos-access", "TX300", "sos-3", secret=PASSWORD)
    c = client(gw, "TX300")
    assert c.ping().status == 0
    with pytest.raises(PingToOften):
        c.ping()
    gw.wait_events("sos-3", 1)
    assert gw.events("sos-3") == 1
    assert gw.result_count("sos-access", "too_often") == 1


def test_unknown_transmitter_and_wrong_password_are_not_authorized(gw: GatewayStack) -> None:
    gw.add("sos-access", "TX400", "sos-4", secret=PASSWORD)
    with pytest.raises(NotAuthorized):
        client(gw, "NOBODY").send_alarm(event_code="MA")
    with pytest.raises(NotAuthorized):
        client(gw, "TX400", password="Wrongpassword15").send_alarm(event_code="MA")
    wait_until(lambda: gw.dead_letters("unknown_sender") == 1, timeout=5, what="dead letter")
    wait_until(lambda: gw.dead_letters("not_authorized") == 1, timeout=5, what="dead letter")
    heads = gw_scalar(gw, "SELECT string_agg(encode(payload_head, 'escape'), '') FROM dead_letters")
    assert "Wrongpassword15" not in str(heads)  # a password is never kept
    assert gw.events("sos-4") == 0


def test_malformed_requests_get_their_status(gw: GatewayStack) -> None:
    gw.add("sos-access", "TX500", "sos-5", secret=PASSWORD)
    c = client(gw, "TX500")
    with pytest.raises(WrongContent):
        c.send_alarm(event_code="MA", section="toolongsection")  # at most 5 characters
    missing = (
        '<?xml version="1.0" encoding="iso-8859-1"?>\n<alarmrequest>'
        f"<authentication>{PASSWORD}</authentication><receiver>x</receiver>"
        "<transmittertype>SV300</transmittertype><transmittercode>TX500</transmittercode>"
        "</alarmrequest>"
    )
    assert b"<status>7</status>" in sos_exchange(gw, missing.encode())
    assert b"<status>2</status>" in sos_exchange(gw, b'<?xml version="1.0"?><alarmrequest><x>')
    assert b"<status>100</status>" in sos_exchange(gw, b"<pingrequest></pingrequest>")
    with pytest.raises(MandatoryDataMissing):
        client(gw, "TX500").send_alarm(event_code="")  # an empty code is a missing one
    assert gw.events("sos-5") == 0
    wait_until(lambda: gw.dead_letters("malformed") == 5, timeout=5, what="dead letters")
