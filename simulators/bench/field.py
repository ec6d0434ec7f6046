"""Load as it comes in the field: many devices, each on its own MQTT connection with its own
credentials and its own topic, as the broker's ACL allows it and nothing more.

One process holds every device's connection (`Devices`): it logs each in with the device's
own username and password (MQTT 3.1.1, clean session, as the devices' C clients spoke it),
writes the QoS 1 PUBLISHes due on a connection in one `send` and reads the broker's PUBACKs in
bulk. The heartbeats of the background run come from a process of their own (`python -m
simulators.bench.field`), so neither their CPU nor their sockets sit in the process that times
the alarms; the timed alarms are written to their own devices' sockets by the timing thread
itself, so an alarm's clock starts when its PUBLISH leaves, not when a client is scheduled.

Why not a client program per device: that was `mosquitto_pub -l` per device, fed lines through
a pipe, and at 12,000 heartbeats/s the 500 C clients and their feeder took 0.85 of the two
cores (per process CPU sampled during `bench --parts latency --latency-backgrounds 12000`,
2026-12-07): the load generator took the machine it was meant to load, and every alarm waited
for cores that the simulated devices held (in the field the devices are not on our machine).
Not paho either: a client per device is a thread and several times that CPU. The broker sees
the same thing in all three: a connection, a login and an ACL check per device, and every
message a QoS 1 PUBLISH it must acknowledge.
"""

from __future__ import annotations

import argparse
import json
import random
import selectors
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alarms import BrokerAuth
from larmkedja.mqtt_wire import encode_publish
from larmkedja.secret_files import write_private
from simulators.bench.infra import module_process

MANIFEST = "devices.json"  # private (0600): it holds every device's password
KEEPALIVE_S = 60  # longer than any run's quiet spell; a busy connection never needs a ping
PUBACK_BYTES = 4  # MQTT 3.1.1: 0x40, remaining length 2, the packet id
DISCONNECT = b"\xe0\x00"


def provision(auth: BrokerAuth, *, root: Path, site: str, device_ids: list[str]) -> Path:
    """Accounts for `device_ids` on the broker and the manifest a `Devices` reads."""
    made = auth.provision_many(site=site, device_ids=device_ids)
    return _manifest(root, [(c.device_id, c.topic, c.username, c.password) for c in made])


def unauthenticated(root: Path, *, site: str, device_ids: list[str]) -> Path:
    """The manifest for a broker that takes anyone (the HA part's brokers, as the single
    machine's of that part): every device still on its own connection and its own topic."""
    return _manifest(root, [(d, f"larm/v1/{site}/{d}/events", d, "") for d in device_ids])


def _manifest(root: Path, devices: list[tuple[str, str, str, str]]) -> Path:
    """(device id, topic, username, password) of each device, where `Devices` reads them."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    keys = ("device_id", "topic", "username", "password")
    write_private(root / MANIFEST, json.dumps([dict(zip(keys, d, strict=True)) for d in devices]))
    return root


def _string(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(*, client_id: str, username: str, password: str) -> bytes:
    """MQTT 3.1.1 CONNECT: clean session, username and password, `KEEPALIVE_S`."""
    flags = 0x80 | 0x40 | 0x02  # a username, a password, a clean session
    body = (
        _string("MQTT")
        + bytes((4, flags))
        + KEEPALIVE_S.to_bytes(2, "big")
        + _string(client_id)
        + _string(username)
        + _string(password)
    )
    if len(body) > 0x3FFF:  # two bytes of remaining length say up to 16,383
        raise ValueError("a CONNECT this large is not a device's")
    if len(body) > 0x7F:
        return bytes((0x10, (len(body) & 0x7F) | 0x80, len(body) >> 7)) + body
    return bytes((0x10, len(body))) + body


@dataclass(slots=True)
class _Conn:
    sock: socket.socket
    topic: bytes
    mid: int = 0
    out: bytes = b""
    sent: int = 0
    acked: int = 0  # PUBACK bytes read, over PUBACK_BYTES
    unread: int = 0


class Devices:
    """The devices of a manifest, each logged in on its own connection, all in this process."""

    def __init__(self, *, root: Path, host: str, port: int, timeout: float = 30.0) -> None:
        entries = json.loads((root / MANIFEST).read_text())
        self.ids: list[str] = [e["device_id"] for e in entries]
        self._conns: list[_Conn] = []
        self._select = selectors.DefaultSelector()
        try:
            self._login(entries, host, port, timeout)
        except BaseException:
            self._close_sockets()
            raise

    def _login(self, entries: list[dict[str, str]], host: str, port: int, timeout: float) -> None:
        for e in entries:  # every CONNECT first, then every CONNACK: one round trip in all
            sock = socket.create_connection((host, port), timeout=timeout)
            self._conns.append(_Conn(sock=sock, topic=e["topic"].encode()))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(
                connect_packet(
                    client_id=e["device_id"], username=e["username"], password=e["password"]
                )
            )
        for device_id, conn in zip(self.ids, self._conns, strict=True):
            connack = _read_exactly(conn.sock, 4)
            if connack[0] != 0x20 or connack[3] != 0:
                raise ConnectionError(f"{device_id}: the broker refused the login ({connack!r})")
            conn.sock.setblocking(False)
            self._select.register(conn.sock, selectors.EVENT_READ, conn)

    def send(self, index: int, payloads: list[bytes]) -> None:
        """QoS 1 PUBLISHes of `payloads` on device `index`'s connection, written now (what the
        socket does not take at once goes with the next `send` or `flush`)."""
        conn = self._conns[index]
        packets = [conn.out]
        for payload in payloads:
            conn.mid = conn.mid % 0xFFFF + 1
            packets.append(encode_publish(conn.topic, payload, conn.mid, v5=False))
        conn.sent += len(payloads)
        self._write(conn, b"".join(packets))

    def _write(self, conn: _Conn, data: bytes) -> None:
        try:
            written = conn.sock.send(data)
        except BlockingIOError:
            written = 0
        conn.out = data[written:]

    def flush(self) -> None:
        for conn in self._conns:
            if conn.out:
                self._write(conn, conn.out)

    def read_acks(self) -> None:
        """Reads what the broker has sent (PUBACKs only: these clients subscribe to nothing)."""
        for key, _ in self._select.select(timeout=0):
            conn: _Conn = key.data
            try:
                data = conn.sock.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError("the broker closed a device's connection")
            conn.unread += len(data)
            conn.acked += conn.unread // PUBACK_BYTES
            conn.unread %= PUBACK_BYTES

    def unacknowledged(self) -> int:
        return sum(c.sent - c.acked for c in self._conns)

    def close(self, timeout: float = 30.0) -> None:
        """Waits for every PUBACK, then DISCONNECT on each connection and reads it to its end
        (a socket closed with unread input is reset, and the broker may drop what it had)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and (
                self.unacknowledged() or any(c.out for c in self._conns)
            ):
                self.flush()
                self.read_acks()
                time.sleep(0.01)
            for conn in self._conns:
                conn.sock.setblocking(True)
                conn.sock.settimeout(max(0.1, deadline - time.monotonic()))
                conn.sock.sendall(conn.out + DISCONNECT)
                conn.sock.shutdown(socket.SHUT_WR)
            for conn in self._conns:
                while conn.sock.recv(65536):
                    pass
        except OSError:
            pass  # the run is over; a device the broker cut is not a figure
        finally:
            self._close_sockets()

    def _close_sockets(self) -> None:
        for conn in self._conns:
            conn.sock.close()
        self._select.close()


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection during the login")
        data += chunk
    return data


def heartbeat(device_id: str, rng: random.Random, ts: str) -> bytes:
    event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    return (
        f'{{"v":1,"event_id":"{event_id}","device_id":"{device_id}","ts":"{ts}",'
        f'"kind":"heartbeat","data":{{"interval_s":60}}}}'
    ).encode()


def new_seed() -> int:
    """A feed's event ids are drawn from this seed: new in every run, as a real device's ids
    are. A fixed seed (until 2026-12-07) sent the same ids in every run: where two runs share
    a database (the rounds of `--ha-rounds`), every heartbeat after the first run was a
    duplicate, nothing was stored or proved a device alive, and 180 s after the first run the
    500 devices went offline together. Two paths of one run share theirs (a dual-path device
    sends the same event on both)."""
    return random.SystemRandom().getrandbits(64)


def feed(devices: Devices, *, rate: float, seconds: float, seed: int, tick_s: float = 0.01) -> int:
    """Heartbeats at `rate`/s over every device in turn, for `seconds` of wall time. When the
    feeder falls more than a second behind (its machine is busy), it drops what it missed
    rather than chasing it; it returns what it really sent."""
    rng = random.Random(seed)
    n = len(devices.ids)
    sent = dropped = turn = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) - dropped - sent
        if due > rate:
            dropped += due - int(rate)
            due = int(rate)
        ts = datetime.now(UTC).isoformat(timespec="milliseconds")
        batch: dict[int, list[bytes]] = {}
        for _ in range(due):
            batch.setdefault(turn, []).append(heartbeat(devices.ids[turn], rng, ts))
            turn = (turn + 1) % n
        for index, payloads in batch.items():
            devices.send(index, payloads)
        devices.flush()
        devices.read_acks()
        sent += due
        time.sleep(tick_s)
    return sent


def background(
    root: Path, port: int, *, rate: float, seconds: float, seed: int | None = None
) -> subprocess.Popen[str]:
    """The devices of `root` sending heartbeats at `rate`/s for `seconds`, from a process of
    their own (it prints how many the broker acknowledged when done); the same `seed` on two
    paths sends the same events on both."""
    return module_process(
        "simulators.bench.field",
        *("--root", str(root), "--port", str(port)),
        *("--rate", str(rate), "--seconds", str(seconds)),
        *(() if seed is None else ("--seed", str(seed))),  # none: the process draws its own
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="field-like benchmark load")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=4000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=None, help="event ids' seed (default: new)")
    args = parser.parse_args()
    devices = Devices(root=args.root, host=args.host, port=args.port)
    try:
        seed = new_seed() if args.seed is None else args.seed  # new ids unless told
        sent = feed(devices, rate=args.rate, seconds=args.seconds, seed=seed)
    finally:
        devices.close()
    print(sent - devices.unacknowledged(), flush=True)  # what the broker acknowledged


if __name__ == "__main__":
    main()
