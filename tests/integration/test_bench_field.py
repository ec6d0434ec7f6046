"""The benchmark's field load on a real broker with the ACL (simulators/bench/field.py): every
simulated device logs in as itself on its own connection, each heartbeat it sends is
acknowledged and delivered on its own topic; a device with a wrong password is refused."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import orjson
import pytest

from larmkedja.secret_files import write_private
from simulators.bench.field import MANIFEST, Devices, feed, new_seed, provision
from tests.helpers import wait_until
from tests.integration.conftest import SecureBroker
from tests.integration.test_security_mqtt import Peer

pytestmark = pytest.mark.integration


def test_each_field_device_sends_as_itself_and_every_heartbeat_arrives(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    ids = ["f-1", "f-2", "f-3"]
    root = provision(secure_broker.auth, root=tmp_path / "field", site="bench", device_ids=ids)
    ingest = Peer(secure_broker, "svc-ingest-1", secure_broker.services["svc-ingest-1"])
    try:
        assert not ingest.subscribe("larm/v1/+/+/events").is_failure
        devices = Devices(root=root, host="127.0.0.1", port=secure_broker.server.port)
        sent = feed(devices, rate=300, seconds=1.0, seed=new_seed())
        devices.close()
        assert sent >= 200 and devices.unacknowledged() == 0
        wait_until(lambda: len(ingest.messages) == sent, timeout=10, what="every heartbeat")
        by_topic = Counter(m.topic for m in ingest.messages)
        assert set(by_topic) == {f"larm/v1/bench/{d}/events" for d in ids}
        for message in ingest.messages:
            assert message.topic.split("/")[3] == orjson.loads(message.payload)["device_id"]
        ids_sent = {orjson.loads(m.payload)["event_id"] for m in ingest.messages}
        assert len(ids_sent) == sent  # every heartbeat a new event
    finally:
        ingest.close()


def test_a_field_device_with_a_wrong_password_is_refused(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    root = provision(secure_broker.auth, root=tmp_path / "field", site="bench", device_ids=["f-9"])
    manifest = json.loads((root / MANIFEST).read_text())
    manifest[0]["password"] = "not-the-password"
    write_private(root / MANIFEST, json.dumps(manifest))
    with pytest.raises(ConnectionError, match="refused the login"):
        Devices(root=root, host="127.0.0.1", port=secure_broker.server.port)
