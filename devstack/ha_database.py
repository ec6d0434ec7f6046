"""The high-availability database on this machine: three etcd members and three Patroni nodes
(PostgreSQL 15 + TimescaleDB, the build installed here), all on loopback under one state dir;
for the partition test (make test-ha) on `host` and a node `apart` in a network namespace.

Every client reaches it with one multi-host URL and `target_session_attrs=read-write`: libpq
tries the hosts in turn and keeps the one that is the primary now (`url`). The interface is the
single `Postgres`'s where they share one (`start`, `stop`, `running`, `url`, `ensure_database`),
so the local stack can run on either.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
import psycopg.sql

from devstack.etcd import EtcdMember
from devstack.patroni import PatroniNode, Timing
from devstack.procs import StackError
from larmkedja.db_connect import client_conninfo
from larmkedja.secret_files import write_private

NODES = 3
# A replica a commit waits for: Patroni calls it `sync_standby` with `synchronous_mode: true`
# and `quorum_standby` (any one of them) with `synchronous_mode: quorum`.
SYNCHRONOUS_ROLES = ("sync_standby", "quorum_standby")


@dataclass(frozen=True, kw_only=True)
class Apart:
    """A node on a machine of its own: it runs in network namespace `netns`, at `host` there."""

    netns: str
    host: str


def ha_port_names() -> list[str]:
    """The ports the HA database needs, by name (kept with the stack's other ports)."""
    names = []
    for i in range(1, NODES + 1):
        names += [f"etcd{i}_client", f"etcd{i}_peer", f"pg{i}", f"patroni{i}"]
    return names


@dataclass(kw_only=True)
class HaDatabase:
    state_dir: Path
    ports: dict[str, int]
    superuser: str = "larmkedja"
    durable: bool = True
    parameters: dict[str, str] = field(default_factory=dict)  # more settings of every node
    timing: Timing = field(default_factory=Timing)
    host: str = "127.0.0.1"
    # Nodes by name that run apart (the others and etcd are on `host`), and the network every
    # node lets its clients and peers in from then (pg_hba; `host` alone by default).
    apart: dict[str, Apart] = field(default_factory=dict)
    clients: str = ""

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir.resolve()  # Patroni runs with its own user and cwd
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.etcd = [
            EtcdMember(
                state_dir=self.state_dir / f"etcd{i}",
                name=f"etcd{i}",
                client_port=self.ports[f"etcd{i}_client"],
                peer_port=self.ports[f"etcd{i}_peer"],
                host=self.host,
            )
            for i in range(1, NODES + 1)
        ]
        self.nodes = [self._node(i) for i in range(1, NODES + 1)]

    def _node(self, i: int) -> PatroniNode:
        apart = self.apart.get(f"pg{i}")
        return PatroniNode(
            state_dir=self.state_dir / f"pg{i}",
            name=f"pg{i}",
            host=apart.host if apart else self.host,
            netns=apart.netns if apart else None,
            clients=self.clients,
            pg_port=self.ports[f"pg{i}"],
            api_port=self.ports[f"patroni{i}"],
            etcd_hosts=[f"{self.host}:{m.client_port}" for m in self.etcd],
            superuser=self.superuser,
            superuser_password=self._secret("superuser"),
            replication_password=self._secret("replication"),
            durable=self.durable,
            parameters=self.parameters,
            timing=self.timing,
        )

    def _secret(self, name: str) -> str:
        path = self.state_dir / f"{name}.password"
        if not path.exists():
            write_private(path, secrets.token_urlsafe(24))
        return path.read_text().strip()

    def password(self) -> str:
        return self._secret("superuser")

    def hosts(self) -> str:
        return ",".join(f"{n.host}:{n.pg_port}" for n in self.nodes)

    def url(self, dbname: str = "larmkedja", *, user: str | None = None, password: str = "") -> str:
        """The multi-host URL of a role (the superuser by default): the primary, whichever
        node that is."""
        user = user or self.superuser
        pw = quote(password or (self.password() if user == self.superuser else ""), safe="")
        return f"postgresql://{user}:{pw}@{self.hosts()}/{dbname}?target_session_attrs=read-write"

    # --- lifecycle ------------------------------------------------------------------------

    def running(self) -> bool:
        return any(n.running() for n in self.nodes)

    def start(self, *, timeout: float = 120.0) -> bool:
        """Start what is not running and wait for a primary; True if anything was started."""
        started = False
        for member in self.etcd:
            started |= member.start(self.etcd)
        for member in self.etcd:
            member.wait()
        for node in self.nodes:
            started |= node.start()
        self.wait_primary(timeout=timeout)
        return started

    def wait_primary(self, *, timeout: float = 60.0) -> PatroniNode:
        """The node that is the writable primary, once there is one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.is_primary() and self._writable():
                    return node
            time.sleep(0.2)
        raise StackError(f"no primary within {timeout:.0f} s (see {self.state_dir}/pg*/)")

    def wait_replicas(self, count: int = NODES - 1, *, timeout: float = 120.0) -> None:
        """Wait until `count` replicas stream from the primary (one of them synchronous)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                try:
                    members = node.members()
                except StackError:
                    continue
                streaming = [
                    m
                    for m in members
                    if m.get("role") in ("replica", *SYNCHRONOUS_ROLES)
                    and m.get("state") in ("running", "streaming")
                ]
                synchronous = [m for m in members if m.get("role") in SYNCHRONOUS_ROLES]
                if len(streaming) >= count and synchronous:
                    return
                break
            time.sleep(0.3)
        raise StackError(f"{count} replicas did not stream within {timeout:.0f} s")

    def _writable(self) -> bool:
        try:
            with psycopg.connect(client_conninfo(self.url("postgres")), autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def synchronous_standbys(self) -> list[PatroniNode]:
        """The replicas a commit may wait for now, as the cluster says (empty if no node
        answers)."""
        for node in self.nodes:
            try:
                members = node.members()
            except StackError:
                continue
            names = {m.get("name") for m in members if m.get("role") in SYNCHRONOUS_ROLES}
            return [n for n in self.nodes if n.name in names]
        return []

    def switchover(self, to: PatroniNode, *, timeout: float = 60.0) -> None:
        """A planned switchover: the primary hands over to replica `to`, which leads after."""
        primary = self.wait_primary(timeout=timeout)
        if primary is not to:
            primary.switchover(to.name)
        deadline = time.monotonic() + timeout
        while not (to.is_primary() and self._writable()):
            if time.monotonic() > deadline:
                raise StackError(f"{to.name} did not take over within {timeout:.0f} s")
            time.sleep(0.2)

    def primary(self) -> PatroniNode | None:
        for node in self.nodes:
            if node.is_primary():
                return node
        return None

    def stop(self) -> bool:
        """Stop the replicas, then the primary, then etcd."""
        stopped = False
        primary = self.primary()
        for node in sorted(self.nodes, key=lambda n: n is primary):
            stopped |= node.stop()
        for member in self.etcd:
            stopped |= member.stop()
        return stopped

    def ensure_database(self, name: str) -> bool:
        with psycopg.connect(client_conninfo(self.url("postgres")), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return False
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        return True
