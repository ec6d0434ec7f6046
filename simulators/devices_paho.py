"""Publishing the fleet's events over MQTT (QoS 1)."""

from __future__ import annotations

import threading
import uuid

from larmkedja.mqtt_paho import make_client
from larmkedja.settings import Settings
from simulators.fleet import Emit, Fleet

WINDOW = 10_000  # unacknowledged publishes at once (paho has 65,535 packet ids)


class DevicePublisher:
    """One connection for the whole fleet (a test fleet; see docs/simulators.md)."""

    def __init__(self, *, settings: Settings, fleet: Fleet) -> None:
        self._fleet = fleet
        self._cond = threading.Condition()
        self._sent = 0
        self._acked = 0
        self._client = make_client(
            settings=settings, client_id=f"larmkedja-fleet-{uuid.uuid4().hex[:8]}"
        )
        self._client.max_inflight_messages_set(1000)
        self._client.on_publish = self._on_publish
        self._client.connect(settings.mqtt_host, settings.mqtt_port)
        self._client.loop_start()

    def _on_publish(self, *args: object) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    def publish(self, emit: Emit) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._sent - self._acked < WINDOW)
            self._sent += 1
        self._client.publish(emit.event.topic(emit.site), emit.event.to_json(), qos=1)

    def flush(self, timeout: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._acked >= self._sent, timeout=timeout)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
