"""Publishing the fleet's events over MQTT (QoS 1).

On a broker with device identity (the local stack: `LARM_MQTT_AUTH_DIR` is set), every device is
provisioned at start and publishes over its own connection with its own credentials, so the
broker's ACL applies as it would to real devices. Without it (tests, the benchmark's broker),
one connection with the configured account serves the whole fleet.
"""

from __future__ import annotations

import threading
import uuid

from paho.mqtt.client import Client

from alarms import provision_device
from larmkedja.mqtt_paho import make_client
from larmkedja.settings import Settings
from simulators.fleet import Emit, Fleet

WINDOW = 10_000  # unacknowledged publishes at once (paho has 65,535 packet ids)


class DevicePublisher:
    def __init__(self, *, settings: Settings, fleet: Fleet) -> None:
        self._cond = threading.Condition()
        self._sent = 0
        self._acked = 0
        self._clients: dict[str, Client] = {}
        if settings.mqtt_auth_dir:
            for device in fleet.devices:
                creds = provision_device(settings, site=device.site, device_id=device.device_id)
                own = settings.model_copy(
                    update={"mqtt_username": creds["username"], "mqtt_password": creds["password"]}
                )
                self._clients[device.device_id] = self._connect(own, device.device_id)
            self._shared: Client | None = None
        else:
            self._shared = self._connect(settings, f"larmkedja-fleet-{uuid.uuid4().hex[:8]}")

    def _connect(self, settings: Settings, client_id: str) -> Client:
        client = make_client(settings=settings, client_id=client_id)
        client.max_inflight_messages_set(1000)
        client.on_publish = self._on_publish
        client.connect_async(settings.mqtt_host, settings.mqtt_port)
        client.loop_start()
        return client

    def _on_publish(self, *args: object) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    def publish(self, emit: Emit) -> None:
        client = self._clients.get(emit.event.device_id, self._shared)
        if client is None:
            return
        with self._cond:
            self._cond.wait_for(lambda: self._sent - self._acked < WINDOW)
            self._sent += 1
        client.publish(emit.event.topic(emit.site), emit.event.to_json(), qos=1)

    def flush(self, timeout: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._acked >= self._sent, timeout=timeout)

    def close(self) -> None:
        for client in [*self._clients.values(), *([self._shared] if self._shared else [])]:
            client.disconnect()
            client.loop_stop()
