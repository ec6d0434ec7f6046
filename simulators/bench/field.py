"""Load as it comes in the field: many devices, each on its own MQTT connection with its own
credentials and its own topic, as the broker's ACL allows it and nothing more.

Each device is Mosquitto's C client, `mosquitto_pub -l` (QoS 1), publishing every line it reads
on its stdin; its username and password are in a private options file that `mosquitto_pub`
reads from `$XDG_CONFIG_HOME`, never on a command line. One feeder writes the lines: the
heartbeats of the background run as their own process (`python -m simulators.bench.field`), so
neither their CPU nor their threads sit in the process that times the alarms.

Why C clients and not paho: a paho client per device is a thread and several times the CPU per
message; with hundreds of connections the load generator would take the cores it is meant to
load.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from alarms import BrokerAuth
from devstack.procs import installed
from larmkedja.secret_files import write_private
from simulators.bench.infra import module_process

MANIFEST = "devices.json"


def provision(auth: BrokerAuth, *, root: Path, site: str, device_ids: list[str]) -> Path:
    """Accounts for `device_ids` on the broker, each one's options file under `root`, and the
    manifest a `Devices` reads."""
    made = auth.provision_many(site=site, device_ids=device_ids)
    for creds in made:
        (root / creds.device_id).mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(
            root / creds.device_id / "mosquitto_pub", _options(creds.username, creds.password)
        )
    manifest = [{"device_id": c.device_id, "topic": c.topic} for c in made]
    write_private(root / MANIFEST, json.dumps(manifest))
    return root


def _options(username: str, password: str) -> str:
    return f"-u {username}\n-P {password}\n"


class Devices:
    """The C clients of a manifest, one process and one connection each, fed by `send`."""

    def __init__(self, *, root: Path, host: str, port: int) -> None:
        exe = installed("mosquitto_pub")
        self.ids: list[str] = []
        self._pipes: list[IO[bytes]] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        for entry in json.loads((root / MANIFEST).read_text()):
            device_id, topic = entry["device_id"], entry["topic"]
            proc = subprocess.Popen(  # noqa: S603 - mosquitto_pub with our own arguments
                [exe, "-h", host, "-p", str(port), "-q", "1", "-t", topic, "-l"],
                stdin=subprocess.PIPE,
                env={"XDG_CONFIG_HOME": str(root / device_id), "PATH": "/usr/bin:/bin"},
            )
            if proc.stdin is None:  # pragma: no cover - stdin=PIPE always gives one
                raise RuntimeError("mosquitto_pub has no stdin")
            self.ids.append(device_id)
            self._pipes.append(proc.stdin)
            self._procs.append(proc)

    def send(self, index: int, lines: bytes) -> None:
        """Lines (each a payload and a newline) for device `index` to publish."""
        pipe = self._pipes[index]
        pipe.write(lines)
        pipe.flush()

    def close(self, timeout: float = 30.0) -> None:
        """End every device's input; each publishes what it has and disconnects."""
        for pipe in self._pipes:
            pipe.close()
        deadline = time.monotonic() + timeout
        for proc in self._procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def heartbeat(device_id: str, rng: random.Random, ts: str) -> bytes:
    event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    return (
        f'{{"v":1,"event_id":"{event_id}","device_id":"{device_id}","ts":"{ts}",'
        f'"kind":"heartbeat","data":{{"interval_s":60}}}}\n'
    ).encode()


def feed(devices: Devices, *, rate: float, seconds: float, tick_s: float = 0.01) -> int:
    """Heartbeats at `rate`/s over every device in turn, for `seconds` of wall time. When the
    feeder falls more than a second behind (its machine is busy), it drops what it missed
    rather than chasing it; it returns what it really sent."""
    rng = random.Random(1)
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
        for index, lines in batch.items():
            devices.send(index, b"".join(lines))
        sent += due
        time.sleep(tick_s)
    return sent


def background(root: Path, port: int, *, rate: float, seconds: float) -> subprocess.Popen[str]:
    """The devices of `root` sending heartbeats at `rate`/s for `seconds`, from a process of
    their own (it prints what it sent when done)."""
    return module_process(
        "simulators.bench.field",
        *("--root", str(root), "--port", str(port)),
        *("--rate", str(rate), "--seconds", str(seconds)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="field-like benchmark load (C clients)")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=4000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    devices = Devices(root=args.root, host=args.host, port=args.port)
    try:
        time.sleep(1.0)  # every device connected
        sent = feed(devices, rate=args.rate, seconds=args.seconds)
    finally:
        devices.close()
    print(sent, flush=True)


if __name__ == "__main__":
    main()
