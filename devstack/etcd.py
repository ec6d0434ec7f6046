"""One member of an etcd cluster (Patroni keeps its leader key there), on loopback only.

Three members on three machines survive the loss of any one; here they are three processes
under the state dir, each with its own data dir and ports. A member that was killed comes back
from its data dir (the cluster flags count only at the very first start).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from devstack.procs import (
    StatePath,
    installed,
    pause_pid,
    read_pid,
    spawn,
    stop_pid,
    wait_for_port,
)

CLUSTER_TOKEN = "larmkedja"  # noqa: S105 - a cluster name, not a secret


@dataclass(kw_only=True)
class EtcdMember:
    state_dir: Path
    name: str
    client_port: int
    peer_port: int
    host: str = "127.0.0.1"

    pid_file = StatePath("etcd.pid")
    log_file = StatePath("etcd.log")
    data_dir = StatePath("data")

    @property
    def client_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    def argv(self, cluster: list[EtcdMember]) -> list[str]:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in cluster)
        return [
            installed("etcd", how="deploy/local/install.sh ha"),
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={initial}",
            "--initial-cluster-state=new",
            f"--initial-cluster-token={CLUSTER_TOKEN}",
            # A leader that misses heartbeats for a second is replaced (the defaults).
            "--heartbeat-interval=100",
            "--election-timeout=1000",
            # info, not warn: elections are logged ("elected leader … at term N"). A new etcd
            # leader restarts every lease's full TTL, Patroni's leader key's too, so an
            # election during a fault makes that failover late; a failed HA run keeps the logs.
            "--log-level=info",
            "--logger=zap",
        ]

    def running(self) -> bool:
        return read_pid(self.pid_file) is not None

    def start(self, cluster: list[EtcdMember]) -> bool:
        if self.running():
            return False
        self.state_dir.mkdir(parents=True, exist_ok=True)
        spawn(self.argv(cluster), log_file=self.log_file, pid_file=self.pid_file)
        return True

    def wait(self, *, timeout: float = 30.0) -> None:
        wait_for_port(self.host, self.client_port, timeout=timeout, what=f"etcd {self.name}")

    def stop(self) -> bool:
        return stop_pid(self.pid_file, timeout=10.0)

    def kill(self) -> None:
        stop_pid(self.pid_file, sig=signal.SIGKILL, timeout=5.0)

    def pause(self, *, resume: bool = False) -> None:
        pid = read_pid(self.pid_file)
        if pid is not None:
            pause_pid(pid, resume=resume)
