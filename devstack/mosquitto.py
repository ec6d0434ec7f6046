"""A Mosquitto broker of our own: own config, port and state dir, on loopback only (or, for the
partition test, on a private address in a network namespace of its own)."""

from __future__ import annotations

import getpass
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from devstack.procs import (
    StackError,
    StatePath,
    installed,
    read_pid,
    spawn,
    stop_pid,
    wait_for_port,
)
from devstack.tls import TlsFiles


@dataclass(kw_only=True)
class Mosquitto:
    state_dir: Path
    port: int
    host: str = "127.0.0.1"
    password_file: Path | None = None
    acl_file: Path | None = None
    # Persistence is written every `autosave_interval` s and on a clean stop; see
    # docs/reliability.md for what a broker crash between saves means.
    autosave_interval_s: int = 5
    # 0 = no limit: a backlog is held, not dropped (memory is the limit; see the docs).
    max_queued_messages: int = 0
    # Unacknowledged messages out to one client (MQTT v5 clients also set their own receive
    # maximum): bounds what a consumer holds in memory.
    max_inflight_messages: int = 20_000
    max_packet_size: int = 12 * 1024
    # A second listener with TLS (a local CA; see devstack/tls.py).
    tls_port: int | None = None
    tls: TlsFiles | None = None
    # A network namespace to run in (`ip netns exec`, which execs, so the pid is the broker's):
    # the partition test puts the broker behind a veth pair it can silence.
    netns: str | None = None

    config_file = StatePath("mosquitto.conf")
    pid_file = StatePath("mosquitto.pid")
    log_file = StatePath("mosquitto.log")

    def config_text(self) -> str:
        data = self.state_dir / "data"
        lines = [
            "# written by larmkedja's local stack; edits are overwritten on start",
            f"persistence true\npersistence_location {data}/",
            f"autosave_interval {self.autosave_interval_s}",
            f"max_queued_messages {self.max_queued_messages}",
            f"max_inflight_messages {self.max_inflight_messages}",
            "persistent_client_expiration 14d",
            "set_tcp_nodelay true",
            # Contract §1: a payload is at most 8 KiB; with topic and header 12 KiB is ample.
            # A bigger packet is refused and its sender disconnected before it is buffered.
            f"max_packet_size {self.max_packet_size}",
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information",
            "connection_messages true",
            f"listener {self.port} {self.host}",
        ]
        if os.geteuid() == 0:
            lines.insert(1, "user root")  # keep our own state dir writable; no privilege drop
        else:
            lines.insert(1, f"user {getpass.getuser()}")
        lines += self._security()
        if self.tls_port is not None and self.tls is not None:
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {self.tls.ca}",
                f"certfile {self.tls.cert}",
                f"keyfile {self.tls.key}",
                "tls_version tlsv1.2",
            ]
        return "\n".join(lines) + "\n"

    def _security(self) -> list[str]:
        """Global (per_listener_settings is off): they hold for every listener."""
        if self.password_file is None:
            return ["allow_anonymous true"]
        lines = [
            "allow_anonymous false",
            f"password_file {self.password_file}",
            # The account is the session: a device that connects with a service's client id
            # (or another device's) gets its own username as its id, and takes nothing over.
            "use_username_as_clientid true",
        ]
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        return lines

    def running(self) -> bool:
        return read_pid(self.pid_file) is not None

    def start(self, *, timeout: float = 10.0) -> bool:
        """Start if not running; True if it was started now."""
        if self.running():
            return False
        (self.state_dir / "data").mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.config_text())
        binary = installed("mosquitto", how="deploy/local/install.sh", also_in="/usr/sbin:/sbin")
        spawn(
            [binary, "-c", str(self.config_file)],
            log_file=self.log_file,
            pid_file=self.pid_file,
            netns=self.netns,
        )
        wait_for_port(self.host, self.port, timeout=timeout, what="mosquitto")
        return True

    def reload(self) -> None:
        """Re-read password and ACL files without a restart (SIGHUP)."""
        self.config_file.write_text(self.config_text())
        pid = read_pid(self.pid_file)
        if pid is None:
            raise StackError("mosquitto is not running")
        os.kill(pid, signal.SIGHUP)

    def stop(self) -> bool:
        return stop_pid(self.pid_file, timeout=15.0)

    def kill(self) -> None:
        stop_pid(self.pid_file, sig=signal.SIGKILL, timeout=5.0)
