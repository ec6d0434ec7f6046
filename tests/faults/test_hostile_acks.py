"""A hostile device cannot hold back the acknowledgement of other devices' events.

Ingest acknowledges in the order it read (`ingest/acks.py`): a message that never counted as
done would hold back the PUBACK of every message read after it, and after a restart the broker
would deliver all of those again. So a device sends everything the contract refuses (not JSON,
another device's id, U+0000, an unknown kind, over the size limit) between an honest burst;
after a clean stop the next process is sent nothing that is already stored, and the refused
messages are dead letters, once each."""

from __future__ import annotations

import json
import signal
import time
import uuid

import pytest

from devstack.procs import free_port
from larmkedja.events import MAX_PAYLOAD_BYTES
from tests.conftest import Broker
from tests.faults.burst import SITE, Burst
from tests.faults.conftest import Services
from tests.faults.test_graceful_shutdown import duplicates
from tests.helpers import publish_all, scalar, wait_until

pytestmark = pytest.mark.integration

HOSTILE_TOPIC = f"larm/v1/{SITE}/x-evil/events"


def hostile(i: int) -> bytes:
    """The i-th refused payload, in turn each kind of refusal."""
    event = {
        "v": 1,
        "event_id": str(uuid.uuid4()),
        "device_id": "x-evil",
        "ts": "2026-12-07T06:00:00+00:00",
        "kind": "heartbeat",
        "data": {},
    }
    match i % 5:
        case 0:
            return b"{not json" + str(i).encode()
        case 1:
            return json.dumps(event | {"device_id": "h-1"}).encode()  # another's id
        case 2:
            return json.dumps(event | {"data": {"note": "a\u0000b"}}).encode()
        case 3:
            return json.dumps(event | {"kind": "door.opened"}).encode()
        case _:
            return json.dumps(event | {"data": {"pad": "x" * MAX_PAYLOAD_BYTES}}).encode()


def test_refused_messages_hold_back_no_acknowledgement(
    services: Services, broker: Broker, database_url: str
) -> None:
    burst = Burst(6_000)
    refused = [(HOSTILE_TOPIC, hostile(i)) for i in range(500)]
    ingest = services.ingest("hostile")
    services.wait_ingest_connected()
    ingest.send_signal(signal.SIGTERM)  # its session queues what follows: one backlog
    assert ingest.wait(timeout=10) == 0
    honest = burst.messages()
    mixed: list[tuple[str, bytes]] = []
    for i, bad in enumerate(refused):  # one refused message after every 12 honest ones
        mixed += [*honest[i * 12 : (i + 1) * 12], bad]
    mixed += honest[len(refused) * 12 :]
    publish_all(broker.host, broker.port, mixed)
    ingest = services.ingest("hostile")
    wait_until(lambda: burst.stored(database_url) >= burst.total, timeout=90, what="all stored")
    wait_until(
        lambda: scalar(database_url, "SELECT count(*) FROM dead_letters") >= len(refused),
        timeout=30,
        what="every refused message a dead letter",
    )
    ingest.send_signal(signal.SIGTERM)
    assert ingest.wait(timeout=10) == 0
    port = free_port()
    services.ingest("hostile", LARM_INGEST_METRICS_PORT=str(port))
    services.wait_ingest_connected()
    time.sleep(2)  # anything the broker still held for the session has come by now (flush 50 ms)
    burst.verify(database_url)
    assert duplicates(port) == 0  # nothing stored was delivered again
    assert scalar(database_url, "SELECT count(*) FROM dead_letters") == len(refused)
