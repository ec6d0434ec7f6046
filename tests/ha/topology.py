"""The HA topology of docs/scaling.md on loopback, for the fault test: three database machines
(a Patroni node with PostgreSQL + TimescaleDB each), three etcd members placed apart from them
(docs/scaling.md: Debian 12's etcd lets a hung etcd leader revoke the new primary's lease when
it wakes), two brokers (two receiving paths), one ingest process per broker, two engines, two
APIs; every service on the multi-host URL, each with its own database role (migration 0007).

With `netns` (a network namespace joined by a veth, tests/faults/netns.py) the third
database machine runs in it, at the veth's inner address, so that a link can be cut between it
and everything else; etcd and the other two database machines then listen on the veth's outer
address (an address of this namespace: reached through loopback from here, through the veth
from the namespace) instead of 127.0.0.1. The brokers and APIs stay on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devstack.ha_database import Apart, HaDatabase, ha_port_names
from devstack.mosquitto import Mosquitto
from devstack.patroni import PatroniNode, Timing
from devstack.postgres import pg_bin_dir
from devstack.procs import free_port
from larmkedja import db
from larmkedja.settings import Settings
from tests.faults.conftest import die_with_parent
from tests.faults.netns import Node
from tests.ha.slow_disk import SlowDisk
from tests.helpers import ROLE_PASSWORDS, wait_until

EXE = str(Path(sys.executable).with_name("larmkedja"))
DATABASE = "larmkedja"
# Faster than the defaults, so that a fault is noticed and healed within the test's minutes.
SERVICE_ENV = {
    "LARM_ENGINE_LEASE_S": "5",
    "LARM_ENGINE_TICK_S": "0.5",
    "LARM_UNANSWERED_ALERT_S": "5",
    "LARM_SERVICE_HEARTBEAT_S": "1",
    "LARM_SERVICE_STALE_S": "5",
    "LARM_MQTT_KEEPALIVE_S": "5",
    "LARM_INGEST_METRICS_PORT": "0",
    "LARM_ENGINE_METRICS_PORT": "0",
}


APART = "pg3"  # the database machine that runs in `netns`, if there is one


@dataclass
class Topology:
    root: Path
    netns: Node | None = None  # where the third database machine runs, apart
    ha: HaDatabase = field(init=False)
    brokers: list[Mosquitto] = field(init=False)
    api_ports: list[int] = field(init=False)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    slow_disks: list[SlowDisk] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        ports = {name: free_port() for name in ha_port_names()}
        apart = {}
        if self.netns is not None:
            apart = {APART: Apart(netns=self.netns.name, host=self.netns.inner_ip)}
        self.ha = HaDatabase(
            state_dir=self.root / "db",
            ports=ports,
            host=self.netns.outer_ip if self.netns else "127.0.0.1",
            apart=apart,
            clients=self.netns.network if self.netns else "",
            # fsync on: a killed process would lose nothing without it, but the slow disk
            # (tests/ha/slow_disk.py) slows the flushes, and without fsync there are none.
            durable=True,
            timing=Timing(ttl_s=20, loop_wait_s=1, retry_timeout_s=5),
        )
        self.brokers = [
            Mosquitto(state_dir=self.root / f"mosquitto{i}", port=free_port()) for i in (1, 2)
        ]
        self.api_ports = [free_port(), free_port()]

    # --- the pieces -----------------------------------------------------------------------

    def url(self, role: str | None = None) -> str:
        if role is None:
            return self.ha.url(DATABASE)
        return self.ha.url(DATABASE, user=role, password=ROLE_PASSWORDS[role])

    def admin_settings(self) -> Settings:
        return Settings(database_url=self.url())

    def start(self) -> None:
        for broker in self.brokers:
            broker.start()
        self.ha.start()
        self.ha.wait_replicas()
        self.ha.ensure_database(DATABASE)
        db.migrate(self.url(), role_passwords=ROLE_PASSWORDS)
        for i in (1, 2):
            self.start_service(f"ingest-{i}")
        for name in ("engine-a", "engine-b", "api-1", "api-2"):
            self.start_service(name)

    def env(self, name: str) -> dict[str, str]:
        kind, instance = name.split("-", 1)
        role = {"ingest": "larm_ingest", "engine": "larm_engine", "api": "larm_api"}[kind]
        env = {
            **os.environ,
            **SERVICE_ENV,
            "LARM_DATABASE_URL": self.url(role),
            "LARM_MQTT_HOST": "127.0.0.1",
            "LARM_MQTT_PORT": str(self.brokers[0].port),
            "LARM_MQTT_PATHS": json.dumps([f"127.0.0.1:{b.port}" for b in self.brokers]),
        }
        if kind == "ingest":  # one per broker
            env["LARM_MQTT_PORT"] = str(self.brokers[int(instance) - 1].port)
            env["LARM_INGEST_INSTANCE"] = instance
        elif kind == "engine":
            env["LARM_ENGINE_INSTANCE"] = instance
        else:
            env["LARM_API_PORT"] = str(self.api_ports[int(instance) - 1])
        return env

    def start_service(self, name: str) -> None:
        log = (self.root / f"{name}-{uuid.uuid4().hex[:4]}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [EXE, name.split("-", 1)[0]],
            env=self.env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        log.close()

    def api_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.api_ports]

    # --- faults ---------------------------------------------------------------------------

    def machine(self, node: PatroniNode) -> int:
        return self.ha.nodes.index(node)

    def kill_machine(self, index: int) -> None:
        """kill -9 of a database machine: Patroni, PostgreSQL and every backend."""
        self.ha.nodes[index].kill()

    def restart_machine(self, index: int) -> None:
        self.ha.nodes[index].start()

    def pause_machine(self, index: int, *, resume: bool = False) -> None:
        """A hung database machine: every process of it stopped (SIGSTOP), or let run on."""
        self.ha.nodes[index].pause(resume=resume)

    def slow_disk(self, index: int, *, delay_s: float) -> SlowDisk:
        """The machine's disk slow (every flush `delay_s` longer) while the result is entered."""
        node = self.ha.nodes[index]
        disk = SlowDisk(node=node, delay_s=delay_s, log=self.root / f"strace-{node.name}.log")
        self.slow_disks.append(disk)
        return disk

    @property
    def apart(self) -> PatroniNode | None:
        """The database machine in a network namespace of its own (None without one)."""
        return next((n for n in self.ha.nodes if n.netns is not None), None)

    def ask_apart(self, sql: str) -> str | None:
        """`sql` asked of the machine apart from inside its namespace, where a cut link does not
        reach (the first column of each row); None when its PostgreSQL does not answer."""
        node = self.apart
        assert node is not None and self.netns is not None
        conninfo = (
            f"host={node.host} port={node.pg_port} dbname={DATABASE} user={self.ha.superuser}"
            " connect_timeout=2"
        )
        argv = self.netns.inside(str(pg_bin_dir() / "psql"), "-XAtq", "-d", conninfo, "-c", sql)
        env = {**os.environ, "PGPASSWORD": self.ha.password()}
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    def kill_service(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """A primary, two streaming replicas (one synchronous), both brokers up."""
        self.ha.wait_primary(timeout=timeout)
        self.ha.wait_replicas(timeout=timeout)
        for broker in self.brokers:
            wait_until(broker.running, timeout=10, what="the broker")

    # --- the end --------------------------------------------------------------------------

    def stop(self) -> None:
        for disk in self.slow_disks:  # first: a node still traced would not stop
            disk.stop()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for i in range(len(self.ha.nodes)):
            self.pause_machine(i, resume=True)
        self.ha.stop()
        for broker in self.brokers:
            broker.stop()
