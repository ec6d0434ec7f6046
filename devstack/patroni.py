"""One PostgreSQL + TimescaleDB node managed by Patroni, on loopback only.

Patroni starts PostgreSQL, holds the leader key in etcd while its node is the primary, and
otherwise runs it as a streaming replica of the leader. Quorum commit
(`synchronous_mode: quorum`, `synchronous_node_count: 1`: `synchronous_standby_names = 'ANY 1
(pg2,pg3)'`): a commit waits for any one of the replicas, and a replica is promoted only once
it has compared its WAL position with enough of the others to know it holds every commit
acknowledged to a client, so one survives the loss of any one node. With one synchronous
standby (`synchronous_mode: true`) a slow disk on that standby held up every commit (alarms
~5 s late, ingest's commits past their deadline; make test-ha) and Patroni saw nothing wrong;
with a quorum the other replica answers. A node whose key expired (killed, hung) is demoted
when it comes back and follows the new leader (`pg_rewind` if it must).

As root, Patroni and PostgreSQL run as the `postgres` user (PostgreSQL refuses root).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack.postgres import pg_bin_dir, postgres_os_user
from devstack.procs import (
    StackError,
    StatePath,
    chown_to,
    ensure_traversable_by,
    pause_pid,
    read_pid,
    signal_tree,
    spawn,
    stop_pid,
)
from larmkedja.secret_files import write_private

SCOPE = "larmkedja"
# `make patroni` puts Patroni here (deploy/ha/patroni.lock); else one on the PATH, if new enough.
PROJECT_PATRONI = Path(__file__).resolve().parents[1] / ".state/tools/patroni/bin/patroni"
# Before 3.0.3 a primary whose Patroni hung past the TTL could take the leader key back from
# the new primary, which was then rewound: its commits lost (patroni#2689; make test-ha).
OLDEST_SAFE = (3, 0, 3)


def patroni_binary() -> str:
    found = str(PROJECT_PATRONI) if PROJECT_PATRONI.exists() else shutil.which("patroni")
    if found is None:
        raise StackError("Patroni is not installed (run make patroni)")
    out = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    version = tuple(int(x) for x in re.findall(r"\d+", out.stdout)[:3])
    if version < OLDEST_SAFE:
        raise StackError(f"{found} is Patroni {out.stdout.strip()}: too old (run make patroni)")
    return found


REPLICATION_USER = "replicator"
PRIMARY_STOP_TIMEOUT_S = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """Patroni's clock (the cluster's, set at its bootstrap): the leader key lives `ttl_s`
    without renewal; every node looks every `loop_wait_s`; a DCS or PostgreSQL call is retried
    for `retry_timeout_s`. Patroni wants loop_wait + 2 * retry_timeout <= ttl, and (4.x) a TTL
    of at least 20 s: a lost primary is replaced about 20 s after its last renewal."""

    ttl_s: int = 20
    loop_wait_s: int = 1
    retry_timeout_s: int = 5


@dataclass(kw_only=True)
class PatroniNode:
    state_dir: Path
    name: str
    pg_port: int
    api_port: int
    etcd_hosts: list[str]
    superuser_password: str
    replication_password: str
    superuser: str = "larmkedja"
    host: str = "127.0.0.1"
    # Where its clients and peers connect from (pg_hba): `host` alone, or a network when the
    # nodes are on several addresses.
    clients: str = ""
    # The network namespace it runs in (a machine of its own for the partition test), if any.
    netns: str | None = None
    durable: bool = True
    # More server settings, the cluster's (written to etcd at its bootstrap: Patroni keeps some,
    # `track_commit_timestamp` among them, equal on every node); the bench times commits.
    parameters: dict[str, str] = field(default_factory=dict)
    timing: Timing = Timing()
    os_user: str | None = field(default_factory=postgres_os_user)

    config_file = StatePath("patroni.yml")
    pid_file = StatePath("patroni.pid")
    log_file = StatePath("patroni.log")
    data_dir = StatePath("data")
    pg_log_dir = StatePath("pglog")
    socket_dir = StatePath("sock")

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    def config(self) -> dict[str, Any]:
        local_parameters: dict[str, Any] = {
            "unix_socket_directories": str(self.socket_dir),
            "shared_preload_libraries": "timescaledb",
            "timescaledb.telemetry_level": "off",
            # As the single machine's (devstack/postgres.py): the HA bench compares the two.
            # With 5-minute checkpoints the fresh cluster's first fell in the bench's rounds,
            # a burst of whole pages on the commit's path (a replica's write lag 100 ms).
            "shared_buffers": "256MB",
            "max_wal_size": "2GB",
            "checkpoint_timeout": "10min",
            "log_min_messages": "warning",
            "log_min_error_statement": "panic",
            "logging_collector": "on",
            "log_directory": str(self.pg_log_dir),
        }
        if not self.durable:  # tests: a killed process loses nothing, only a machine crash would
            local_parameters["fsync"] = "off"
        clients = self.clients or f"{self.host}/32"
        return {
            "scope": SCOPE,
            "namespace": f"/{SCOPE}/",
            "name": self.name,
            "log": {"level": "INFO"},
            "restapi": {
                "listen": f"{self.host}:{self.api_port}",
                "connect_address": f"{self.host}:{self.api_port}",
            },
            "etcd3": {"hosts": self.etcd_hosts},
            "bootstrap": {
                "dcs": self.cluster_config(),
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"{self.host}:{self.pg_port}",
                "connect_address": f"{self.host}:{self.pg_port}",
                "data_dir": str(self.data_dir),
                "bin_dir": str(pg_bin_dir()),
                "pgpass": str(self.state_dir / "pgpass"),
                "authentication": {
                    "superuser": {"username": self.superuser, "password": self.superuser_password},
                    "replication": {
                        "username": REPLICATION_USER,
                        "password": self.replication_password,
                    },
                },
                "parameters": local_parameters,
                "pg_hba": [
                    "local all all peer",
                    f"host all all {clients} scram-sha-256",
                    f"host replication {REPLICATION_USER} {clients} scram-sha-256",
                ],
            },
        }

    def cluster_config(self) -> dict[str, Any]:
        """What every node shares (written to etcd at the cluster's bootstrap)."""
        t = self.timing
        return {
            "ttl": t.ttl_s,
            "loop_wait": t.loop_wait_s,
            "retry_timeout": t.retry_timeout_s,
            "maximum_lag_on_failover": 16 * 1024 * 1024,
            "synchronous_mode": "quorum",
            "synchronous_node_count": 1,
            # A primary cut off from its replicas and demoted (it lost etcd) would never stop:
            # a backend ended by the shutdown drops its temporary tables on the way out, in a
            # transaction whose commit waits for a replica (ingest's staging tables; make
            # test-ha). After this long Patroni kills the postmaster (those backends go with it).
            "primary_stop_timeout": PRIMARY_STOP_TIMEOUT_S,
            "postgresql": {
                "use_pg_rewind": True,
                "use_slots": True,
                "parameters": {
                    "max_connections": 200,
                    # Acknowledged once a replica has written the commit to its machine (not
                    # flushed): still on two machines, so the loss of any one loses nothing,
                    # and a replica's fsync is off the commit's path (docs/scaling.md).
                    "synchronous_commit": "remote_write",
                    "wal_log_hints": "on",
                    # Whole pages after a checkpoint compressed: less WAL for a replica to
                    # write before a commit returns (docs/scaling.md).
                    "wal_compression": "lz4",
                    "wal_keep_size": "256MB",
                    "max_wal_senders": 10,
                    "max_replication_slots": 10,
                }
                | self.parameters,
            },
        }

    def running(self) -> bool:
        return read_pid(self.pid_file) is not None

    def start(self) -> bool:
        if self.running():
            return False
        for folder in (self.state_dir, self.pg_log_dir, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
        write_private(self.config_file, yaml.safe_dump(self.config(), sort_keys=False))
        binary = patroni_binary()
        if self.os_user:
            ensure_traversable_by(self.state_dir, self.os_user)
            ensure_traversable_by(Path(binary).parent, self.os_user)
            chown_to(self.state_dir, self.os_user)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.state_dir)}
        spawn(
            [binary, str(self.config_file)],
            log_file=self.log_file,
            pid_file=self.pid_file,
            env=env,
            user=self.os_user,
            netns=self.netns,
        )
        return True

    def postmaster_pid(self) -> int | None:
        return read_pid(self.data_dir / "postmaster.pid")

    def stop(self) -> bool:
        """A clean stop: Patroni stops PostgreSQL and hands the leader key over."""
        return stop_pid(self.pid_file, timeout=60.0)

    def kill(self) -> None:
        """The machine is gone: Patroni, PostgreSQL and every backend SIGKILLed at once."""
        for pid in (read_pid(self.pid_file), self.postmaster_pid()):
            if pid is not None:
                signal_tree(pid, signal.SIGKILL)
        stop_pid(self.pid_file, sig=signal.SIGKILL, timeout=5.0)

    def pause(self, *, resume: bool = False) -> None:
        """The machine hangs (SIGSTOP to Patroni, PostgreSQL and its backends) or wakes up."""
        for pid in (read_pid(self.pid_file), self.postmaster_pid()):
            if pid is not None:
                pause_pid(pid, resume=resume)

    # --- Patroni's REST API --------------------------------------------------------------

    def _get(self, path: str, *, timeout: float = 1.0) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{self.api_url}{path}", timeout=timeout) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body or b"{}")
            except ValueError:
                return exc.code, {}

    def switchover(self, candidate: str) -> None:
        """Hand the primary's role over to `candidate` now (POST /switchover to this primary)."""
        body = json.dumps({"leader": self.name, "candidate": candidate}).encode()
        request = urllib.request.Request(  # noqa: S310 - our own node's URL
            f"{self.api_url}/switchover", data=body, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
                resp.read()
        except urllib.error.HTTPError as exc:
            raise StackError(f"switchover to {candidate}: {exc.code} {exc.read()!r}") from exc

    def is_primary(self) -> bool:
        """This node runs the primary and holds the leader key (GET /primary is 200)."""
        try:
            return self._get("/primary")[0] == 200
        except (OSError, ValueError):
            return False

    def members(self) -> list[dict[str, Any]]:
        """The cluster as this node sees it (GET /cluster)."""
        try:
            status, body = self._get("/cluster")
        except (OSError, ValueError) as exc:
            raise StackError(f"patroni {self.name} does not answer: {exc}") from exc
        return list(body.get("members", [])) if status == 200 else []
