"""Steady load and a watcher for the HA fault test.

`DualPathDevices`: alarms (each from a device of its own, so none folds into another) and
heartbeats, every event sent to both brokers as a dual-path device sends it. An event counts as
sent once one broker acknowledged it (PUBACK 0x10 "no matching subscribers" is no delivery);
one that no broker acknowledged within a few seconds is sent again with the same event id
(contract §1: the device retries).

`QueueWatch`: reads the queue through the two APIs as an operator's console behind a load
balancer would (one instance, else the other), records every read and when each alarm was first
seen."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
from paho.mqtt.client import Client, MQTTMessageInfo
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from larmkedja.events import DeviceEvent, Kind

SITE = "ha"
RESEND_S = 5.0
NO_MATCHING_SUBSCRIBERS = 0x10


@dataclass
class _Pending:
    topic: str
    payload: bytes
    last_sent: float
    infos: list[tuple[int, MQTTMessageInfo]] = field(default_factory=list)


class DualPathDevices:
    """Only its own thread publishes and looks at the acknowledgements (paho calls
    `on_publish` holding its own lock: a lock of ours taken there deadlocked with `publish`)."""

    def __init__(self, ports: list[int], *, alarms_per_s: float, heartbeats_per_s: float) -> None:
        self._alarm_every = 1.0 / alarms_per_s
        self._beat_every = 1.0 / heartbeats_per_s
        self._pending: dict[uuid.UUID, _Pending] = {}
        # PUBACK reason codes by (client, mid), written by paho's threads without a lock of ours.
        self._reasons: dict[tuple[int, int], int] = {}
        self._alarm_devices: dict[uuid.UUID, str] = {}
        self.sent_at: dict[str, float] = {}  # alarm device → first publish (monotonic)
        self.acked: set[str] = set()  # alarm devices one broker acknowledged
        self.done = threading.Event()
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._clients = [self._client(i, port) for i, port in enumerate(ports)]
        self._thread = threading.Thread(target=self._run, name="dual-path-devices", daemon=True)

    def _client(self, index: int, port: int) -> Client:
        client = Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"ha-devices-{index}-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=2)
        client.on_publish = lambda c, u, mid, rc, p: self._reasons.__setitem__(
            (index, mid), rc.value
        )
        client.connect_async("127.0.0.1", port, keepalive=5)
        client.loop_start()
        return client

    def _send(self, event_id: uuid.UUID, topic: str, payload: bytes) -> None:
        pending = self._pending.setdefault(event_id, _Pending(topic, payload, 0.0))
        pending.last_sent = time.monotonic()
        for index, client in enumerate(self._clients):
            if client.is_connected():
                pending.infos.append((index, client.publish(topic, payload, qos=1)))

    def _collect(self) -> None:
        """Events a broker acknowledged are sent; the rest go again after RESEND_S."""
        now = time.monotonic()
        for event_id, pending in list(self._pending.items()):
            if any(self._delivered(index, info) for index, info in pending.infos):
                del self._pending[event_id]
                device = self._alarm_devices.get(event_id)
                if device is not None:
                    self.acked.add(device)
            elif now - pending.last_sent > RESEND_S:
                self._send(event_id, pending.topic, pending.payload)

    def _delivered(self, index: int, info: MQTTMessageInfo) -> bool:
        if not info.is_published():
            return False
        reason = self._reasons.pop((index, info.mid), 0)
        return reason < 0x80 and reason != NO_MATCHING_SUBSCRIBERS

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=40)

    def close(self) -> None:
        for client in self._clients:
            client.disconnect()
            client.loop_stop()

    def unacknowledged(self) -> int:
        return sum(1 for e in self._pending if e in self._alarm_devices)

    def _run(self) -> None:
        started = self.started = time.monotonic()
        alarms = beats = 0
        for n in itertools.count():
            if self._stop.is_set():
                break
            now = time.monotonic() - started
            while alarms * self._alarm_every <= now:
                event = DeviceEvent.create(f"ha-alarm-{alarms:05d}", Kind.ALARM_BUTTON)
                self._alarm_devices[event.event_id] = event.device_id
                self.sent_at[event.device_id] = time.monotonic()
                self._send(event.event_id, event.topic(SITE), event.to_json())
                alarms += 1
            while beats * self._beat_every <= now:
                event = DeviceEvent.create(
                    f"ha-beat-{beats % 200:03d}", Kind.HEARTBEAT, {"interval_s": 3600}
                )
                self._send(event.event_id, event.topic(SITE), event.to_json())
                beats += 1
            if n % 10 == 0:
                self._collect()
            time.sleep(0.02)
        deadline = time.monotonic() + 30  # the last ones: until a broker has each
        while self.unacknowledged() and time.monotonic() < deadline:
            self._collect()
            time.sleep(0.2)
        self.done.set()


@dataclass
class Read:
    at: float
    ok: bool


@dataclass
class QueueWatch:
    urls: list[str]
    headers: dict[str, str]
    every_s: float = 0.25
    reads: list[Read] = field(default_factory=list)
    first_seen: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="queue-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=2.0) as client:
            while not self._stop.is_set():
                ok = False
                for url in self.urls:  # a load balancer: one instance, else the next
                    try:
                        resp = client.get(f"{url}/api/v1/alarms", params={"limit": 5000})
                    except httpx.HTTPError:
                        continue
                    if resp.status_code == 200:
                        at = time.monotonic()
                        for alarm in resp.json():
                            self.first_seen.setdefault(alarm["device_id"], at)
                        ok = True
                        break
                self.reads.append(Read(time.monotonic(), ok))
                self._stop.wait(self.every_s)

    def unreadable_s(self, since: float, until: float) -> float:
        """The longest time in [since, until) between two good reads with failed ones between
        them (so the outage is counted from the last good read before it)."""
        longest, last_ok, failing = 0.0, since, False
        for read in self.reads:
            if read.at >= until:
                break
            if read.ok:
                if failing and read.at >= since:
                    longest = max(longest, read.at - max(last_ok, since))
                last_ok, failing = read.at, False
            elif read.at >= since:
                failing = True
        if failing:
            longest = max(longest, until - max(last_ok, since))
        return longest
