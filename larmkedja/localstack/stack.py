"""`make up` / `make run` / `make down`: the whole system on this machine, under `.state/`.

Idempotent: what already runs is left alone, so a second `up` is a no-op; `down` stops what
`up` started (found by its pid files) and nothing else. Ports are chosen free on the first
`up` and kept in `.state/ports.json` so the addresses in `.state/env` stay the same.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from larmkedja import db
from larmkedja.localstack.mosquitto import Mosquitto
from larmkedja.localstack.postgres import Postgres
from larmkedja.localstack.procs import StackError, free_port, read_pid, spawn, stop_pid
from larmkedja.localstack.prometheus import Prometheus, prometheus_binary

DATABASE = "larmkedja"
PORT_NAMES = ("mqtt", "postgres", "api", "ingest_metrics", "engine_metrics", "prometheus")


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    name: str
    argv: tuple[str, ...]
    env: dict[str, str]


class Stack:
    def __init__(self, *, state_dir: Path, scrape_interval: str = "5s") -> None:
        self.state_dir = state_dir.resolve()
        self.ports = self._ports()
        self.mosquitto = Mosquitto(state_dir=self.state_dir / "mosquitto", port=self.ports["mqtt"])
        self.postgres = Postgres(state_dir=self.state_dir / "pg", port=self.ports["postgres"])
        self.prometheus = Prometheus(
            state_dir=self.state_dir / "prometheus",
            port=self.ports["prometheus"],
            targets={
                "larmkedja-ingest": [f"127.0.0.1:{self.ports['ingest_metrics']}"],
                "larmkedja-engine": [f"127.0.0.1:{self.ports['engine_metrics']}"],
                "larmkedja-api": [f"127.0.0.1:{self.ports['api']}"],
            },
            scrape_interval=scrape_interval,
        )

    def _ports(self) -> dict[str, int]:
        path = self.state_dir / "ports.json"
        ports: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        for name in PORT_NAMES:
            ports.setdefault(name, free_port())
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ports, indent=2) + "\n")
        return ports

    # --- environment -------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The LARM_* settings every process of this stack gets (also written to .state/env)."""
        return {
            "LARM_MQTT_HOST": "127.0.0.1",
            "LARM_MQTT_PORT": str(self.ports["mqtt"]),
            "LARM_DATABASE_URL": self.postgres.url(DATABASE),
            "LARM_API_HOST": "127.0.0.1",
            "LARM_API_PORT": str(self.ports["api"]),
            "LARM_API_URL": f"http://127.0.0.1:{self.ports['api']}",
            "LARM_INGEST_METRICS_PORT": str(self.ports["ingest_metrics"]),
            "LARM_ENGINE_METRICS_PORT": str(self.ports["engine_metrics"]),
            "LARM_PROMETHEUS_URL": f"http://127.0.0.1:{self.ports['prometheus']}",
        }

    def write_env_file(self) -> Path:
        path = self.state_dir / "env"
        lines = ["# written by `make up`: source it to talk to the local stack"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(self.env().items())]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    def services(self, *, fleet: bool) -> list[Service]:
        exe = str(Path(sys.executable).with_name("larmkedja"))
        env = {**os.environ, **self.env()}
        found = [
            Service(
                name="ingest-1", argv=(exe, "ingest"), env={**env, "LARM_INGEST_INSTANCE": "1"}
            ),
            Service(name="engine-1", argv=(exe, "engine"), env=env),
            Service(name="api", argv=(exe, "api"), env=env),
        ]
        if fleet:
            found.append(Service(name="fleet", argv=(exe, "simulate"), env=env))
        return found

    # --- up / down ---------------------------------------------------------------------

    def up(self, *, fleet: bool = False) -> list[str]:
        """Start whatever is not running; returns what was started now."""
        started: list[str] = []
        if self.mosquitto.start():
            started.append("mosquitto")
        if self.postgres.start():
            started.append("postgres")
        self.postgres.ensure_database(DATABASE)
        db.migrate(self.postgres.url(DATABASE))
        services = self.services(fleet=fleet)
        for service in services:
            if service.name != "fleet" and self._start_service(service):
                started.append(service.name)
        self.write_env_file()
        self.wait_ready(timeout=60.0)
        if prometheus_binary() is not None and self.prometheus.start():
            started.append("prometheus")
        # The fleet last: its staff work through the API, which is ready now.
        for service in services:
            if service.name == "fleet" and self._start_service(service):
                started.append(service.name)
        return started

    def _start_service(self, service: Service) -> bool:
        run_dir = self.state_dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        pid_file = run_dir / f"{service.name}.pid"
        if read_pid(pid_file) is not None:
            return False
        spawn(
            service.argv,
            log_file=self.state_dir / "log" / f"{service.name}.log",
            pid_file=pid_file,
            env=service.env,
        )
        return True

    def down(self) -> list[str]:
        stopped: list[str] = []
        run_dir = self.state_dir / "run"
        # Publishers first, so the services can still take what was already sent.
        order = sorted(
            run_dir.glob("*.pid") if run_dir.exists() else [],
            key=lambda p: (not p.stem.startswith("fleet"), p.stem),
        )
        for pid_file in order:
            if stop_pid(pid_file, timeout=15.0):
                stopped.append(pid_file.stem)
        if self.prometheus.stop():
            stopped.append("prometheus")
        if self.postgres.stop():
            stopped.append("postgres")
        if self.mosquitto.stop():
            stopped.append("mosquitto")
        return stopped

    def wait_ready(self, *, timeout: float) -> None:
        url = f"http://127.0.0.1:{self.ports['api']}/readyz"
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = exc.read().decode(errors="replace")
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise StackError(f"the stack did not become ready within {timeout:.0f} s: {last}")

    def status(self) -> dict[str, bool]:
        run_dir = self.state_dir / "run"
        found = {
            "mosquitto": self.mosquitto.running(),
            "postgres": self.postgres.running(),
            "prometheus": self.prometheus.running(),
        }
        for pid_file in sorted(run_dir.glob("*.pid")) if run_dir.exists() else []:
            found[pid_file.stem] = read_pid(pid_file) is not None
        return found
