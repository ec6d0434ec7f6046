"""A small demo publisher for `make run`: a few devices heartbeating, now and then an alarm."""

from __future__ import annotations

import logging
import random
import threading
import uuid
from datetime import UTC, datetime

from larmkedja.events import DeviceEvent, Kind
from larmkedja.mqtt_paho import make_client
from larmkedja.settings import Settings

log = logging.getLogger(__name__)


def make_event(device_id: str, kind: Kind, data: dict[str, object] | None = None) -> DeviceEvent:
    return DeviceEvent(
        v=1,
        event_id=uuid.uuid4(),
        device_id=device_id,
        ts=datetime.now(UTC),
        kind=kind,
        data=data or {},
    )


def run_demo(*, settings: Settings, devices: int, seconds: float) -> int:
    stop = threading.Event()
    client = make_client(settings=settings, client_id=f"larmkedja-demo-{uuid.uuid4().hex[:8]}")
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    rng = random.Random(7)
    fleet = [(f"demo-{i:03d}", "demo") for i in range(devices)]
    started = datetime.now(UTC)
    try:
        while not stop.wait(5.0):
            for device_id, site in fleet:
                event = make_event(device_id, Kind.HEARTBEAT, {"interval_s": 5})
                client.publish(event.topic(site), event.to_json(), qos=1)
            if rng.random() < 0.2:
                device_id, site = rng.choice(fleet)
                event = make_event(device_id, Kind.ALARM_BUTTON)
                client.publish(event.topic(site), event.to_json(), qos=1)
                log.info("demo alarm from %s", device_id)
            if seconds and (datetime.now(UTC) - started).total_seconds() >= seconds:
                break
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0
