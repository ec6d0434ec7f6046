"""Load for the benchmark: contract events published at QoS 1, as fast as the broker takes them
or at a set rate. Runnable as its own process (`python -m simulators.bench.load`) so that its
CPU does not count against what is measured."""

from __future__ import annotations

import argparse
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Iterator

from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from larmkedja.events import DeviceEvent, Kind
from simulators.bench.infra import module_process

# Unacknowledged publishes at once. Small on purpose: paho scans its in-flight messages on
# every PUBACK, so 10,000 in flight cost it 5x (1.8k vs 9.2k msg/s measured here).
WINDOW = 200


def heartbeat(device: int, *, site: str = "bench") -> tuple[str, bytes]:
    event = DeviceEvent.create(f"b-{device:06d}", Kind.HEARTBEAT, {"interval_s": 60})
    return event.topic(site), event.to_json()


def heartbeats(n: int, *, devices: int, site: str = "bench") -> Iterator[tuple[str, bytes]]:
    for i in range(n):
        yield heartbeat(i % devices, site=site)


class Publisher:
    """One paho client; `send` blocks only when WINDOW publishes are unacknowledged."""

    def __init__(self, host: str, port: int, *, client_id: str | None = None) -> None:
        self._acked = 0
        self._cond = threading.Condition()
        self.client = Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"bench-pub-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.max_inflight_messages_set(WINDOW)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.connect(host, port)
        self.client.loop_start()
        self.sent = 0

    def _on_publish(self, *args: object) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    def send(self, topic: str, payload: bytes) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self.sent - self._acked < WINDOW)
        self.client.publish(topic, payload, qos=1)
        self.sent += 1

    def flush(self, timeout: float = 120.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._acked >= self.sent, timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_all(host: str, port: int, messages: Iterable[tuple[str, bytes]]) -> tuple[int, float]:
    """Publish everything and wait for the broker's acks; returns (count, seconds)."""
    pub = Publisher(host, port)
    started = time.perf_counter()
    try:
        for topic, payload in messages:
            pub.send(topic, payload)
        if not pub.flush():
            raise RuntimeError("the broker did not acknowledge every publish")
        return pub.sent, time.perf_counter() - started
    finally:
        pub.close()


class Fanout:
    """The same messages to every broker, as a device with two receiving paths sends them."""

    def __init__(self, host: str, ports: list[int]) -> None:
        self._pubs = [Publisher(host, port) for port in ports]

    @property
    def sent(self) -> int:
        return self._pubs[0].sent

    def send(self, topic: str, payload: bytes) -> None:
        for pub in self._pubs:
            pub.send(topic, payload)

    def flush(self, timeout: float = 120.0) -> bool:
        return all(pub.flush(timeout) for pub in self._pubs)

    def close(self) -> None:
        for pub in self._pubs:
            pub.close()


def publish_at_rate(
    host: str, ports: list[int], *, rate: float, seconds: float, devices: int
) -> int:
    """Heartbeats at `rate`/s spread over `devices` devices (a Sweden-like background), for
    `seconds` of wall time, each to every broker of `ports`. When the generator itself falls
    more than a second behind (its machine is busy), it drops what it missed instead of
    chasing it: the run lasts what it says, and the count it returns is what it really sent
    (the achieved rate)."""
    pub = Fanout(host, ports)
    rng = random.Random(1)
    started = time.monotonic()
    dropped = 0
    try:
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) - dropped
            if due - pub.sent > rate:
                dropped += due - pub.sent - int(rate)
                due = pub.sent + int(rate)
            for _ in range(min(due - pub.sent, max(1, int(rate / 20)))):
                pub.send(*heartbeat(rng.randrange(devices)))
            time.sleep(0.005)
        pub.flush()
        return pub.sent
    finally:
        pub.close()


def background(ports: list[int], *, rate: float, seconds: float) -> subprocess.Popen[str]:
    """`publish_at_rate` in a process of its own, to every broker of `ports` (it prints what
    it sent when done)."""
    ports_args = [f"--port={port}" for port in ports]
    return module_process(
        "simulators.bench.load", *ports_args, "--rate", str(rate), "--seconds", str(seconds)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="benchmark background load")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, action="append", required=True, help="repeatable")
    parser.add_argument("--rate", type=float, default=4000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--devices", type=int, default=250_000)
    args = parser.parse_args()
    sent = publish_at_rate(
        args.host, args.port, rate=args.rate, seconds=args.seconds, devices=args.devices
    )
    print(sent)


if __name__ == "__main__":
    main()
