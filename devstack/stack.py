"""`make up` / `make run` / `make down`: the whole system on this machine, under `.state/`.

Idempotent: what already runs is left alone, so a second `up` is a no-op; `down` stops what
`up` started (found by its pid files) and nothing else. Ports are chosen free on the first
`up` and kept in `.state/ports.json` so the addresses in `.state/env` stay the same.

Secure by default: the broker refuses anonymous clients (each service and each device has its
own account, `.state/secrets.json` and `.state/mosquitto/auth/`), and the services connect to
the database as `larm_app`, which cannot change the audit log; only migrations run as owner.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from alarms.devices.credentials_mosquitto import BrokerAuth, service_account
from devstack.mosquitto import Mosquitto
from devstack.postgres import Postgres
from devstack.procs import (
    StackError,
    free_port,
    port_open,
    read_pid,
    spawn,
    stop_pid,
)
from devstack.prometheus import Prometheus, prometheus_binary
from devstack.tls import local_ca
from gateway import upgrade_sender_passwords
from larmkedja import db
from larmkedja.secret_files import write_private
from larmkedja.settings import Settings

DATABASE = "larmkedja"
PORT_NAMES = (
    "mqtt", "postgres", "api", "ingest_metrics", "engine_metrics", "prometheus", "mqtts",
    "scaip", "sos_access", "dc09", "gateway_metrics",
)  # fmt: skip


# Each process of the stack has a broker account and a database role of its own.
MQTT_ACCOUNTS = {
    "ingest": service_account("svc-ingest", "1"),
    "engine": service_account("svc-engine", "1"),
    "gateway": service_account("svc-gateway", "1"),
    "monitor": service_account("svc-monitor", "1"),
}
# The gateway's server key (SOS Access password HMACs, SIP digest nonces): the gateway and the
# administrators' `.state/env` (for `larmkedja sender add`) have it, no other process.
GATEWAY_KEY = "gateway-secret-key"
DB_ROLES = {
    "ingest": "larm_ingest",
    "engine": "larm_engine",
    "api": "larm_api",
    "gateway": "larm_gateway",
}


class Database(Protocol):
    """What the stack needs of its database: one PostgreSQL, or the HA cluster."""

    def start(self) -> bool: ...

    def stop(self) -> bool: ...

    def running(self) -> bool: ...

    def url(self, dbname: str = ...) -> str: ...

    def ensure_database(self, name: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    name: str
    argv: tuple[str, ...]
    env: dict[str, str]


class Stack:
    def __init__(self, *, state_dir: Path, scrape_interval: str = "5s", tls: bool = False) -> None:
        self.state_dir = state_dir.resolve()
        self.ports = self._ports()
        self.secrets = self._secrets()
        mq_dir = self.state_dir / "mosquitto"
        self.auth = BrokerAuth(directory=mq_dir / "auth", pid_file=mq_dir / "mosquitto.pid")
        self.tls = local_ca(mq_dir / "tls") if tls else None
        self.mosquitto = Mosquitto(
            state_dir=mq_dir,
            port=self.ports["mqtt"],
            password_file=self.auth.password_file,
            acl_file=self.auth.acl_file,
            tls_port=self.ports["mqtts"] if tls else None,
            tls=self.tls,
        )
        self.postgres: Database = Postgres(
            state_dir=self.state_dir / "pg", port=self.ports["postgres"]
        )
        self.prometheus = Prometheus(
            state_dir=self.state_dir / "prometheus",
            port=self.ports["prometheus"],
            targets={
                "larmkedja-ingest": [f"127.0.0.1:{self.ports['ingest_metrics']}"],
                "larmkedja-engine": [f"127.0.0.1:{self.ports['engine_metrics']}"],
                "larmkedja-api": [f"127.0.0.1:{self.ports['api']}"],
                "larmkedja-gateway": [f"127.0.0.1:{self.ports['gateway_metrics']}"],
            },
            scrape_interval=scrape_interval,
        )

    def port_names(self) -> list[str]:
        return list(PORT_NAMES)

    def _ports(self) -> dict[str, int]:
        path = self.state_dir / "ports.json"
        ports: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
        for name in self.port_names():
            ports.setdefault(name, free_port())
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ports, indent=2) + "\n")
        return ports

    def _secrets(self) -> dict[str, str]:
        """Passwords of the broker accounts and database roles, made once and kept in
        .state/secrets.json (private from its first byte)."""
        path = self.state_dir / "secrets.json"
        found: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        for name in [*MQTT_ACCOUNTS.values(), *DB_ROLES.values(), "db-app"]:
            found.setdefault(name, secrets.token_urlsafe(24))
        found.setdefault(GATEWAY_KEY, secrets.token_urlsafe(48))
        write_private(path, json.dumps(found, indent=2) + "\n")
        return found

    # --- environment -------------------------------------------------------------------

    def database_url(self, role: str = "larm_app") -> str:
        """The URL of a role: `larm_app` (the administrators', in .state/env) or a process's."""
        pw = quote(self.secrets["db-app" if role == "larm_app" else role], safe="")
        return f"postgresql://{role}:{pw}@127.0.0.1:{self.ports['postgres']}/{DATABASE}"

    def app_database_url(self) -> str:
        return self.database_url()

    def env(self) -> dict[str, str]:
        """The LARM_* settings of this stack (written to .state/env; contract §5)."""
        return {
            "LARM_MQTT_HOST": "127.0.0.1",
            "LARM_MQTT_PORT": str(self.ports["mqtt"]),
            "LARM_DATABASE_URL": self.app_database_url(),
            "LARM_DATABASE_ADMIN_URL": self.postgres.url(DATABASE),
            "LARM_API_HOST": "127.0.0.1",
            "LARM_API_PORT": str(self.ports["api"]),
            "LARM_API_URL": f"http://127.0.0.1:{self.ports['api']}",
            "LARM_INGEST_METRICS_PORT": str(self.ports["ingest_metrics"]),
            "LARM_ENGINE_METRICS_PORT": str(self.ports["engine_metrics"]),
            "LARM_PROMETHEUS_URL": f"http://127.0.0.1:{self.ports['prometheus']}",
            "LARM_GATEWAY_SCAIP_PORT": str(self.ports["scaip"]),
            "LARM_GATEWAY_SOS_ACCESS_PORT": str(self.ports["sos_access"]),
            "LARM_GATEWAY_DC09_PORT": str(self.ports["dc09"]),
            "LARM_GATEWAY_METRICS_PORT": str(self.ports["gateway_metrics"]),
            "LARM_MQTT_AUTH_DIR": str(self.auth.directory),
            "LARM_MQTT_BROKER_PID_FILE": str(self.mosquitto.pid_file),
            "LARM_GATEWAY_SECRET_KEY": self.secrets[GATEWAY_KEY],
            **(
                {"LARM_MQTTS_PORT": str(self.ports["mqtts"]), "LARM_MQTT_TLS_CA": str(self.tls.ca)}
                if self.tls
                else {}
            ),
        }

    def write_env_file(self) -> Path:
        path = self.state_dir / "env"
        lines = ["# written by `make up`: source it to talk to the local stack"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(self.env().items())]
        write_private(path, "\n".join(lines) + "\n")
        return path

    def process_env(self, process: str) -> dict[str, str]:
        """What one process gets of its own: its broker account and its database role."""
        own: dict[str, str] = {}
        if process in MQTT_ACCOUNTS:
            account = MQTT_ACCOUNTS[process]
            own |= {"LARM_MQTT_USERNAME": account, "LARM_MQTT_PASSWORD": self.secrets[account]}
        if process in DB_ROLES:
            own["LARM_DATABASE_URL"] = self.database_url(DB_ROLES[process])
        if process == "gateway":
            own["LARM_GATEWAY_SECRET_KEY"] = self.secrets[GATEWAY_KEY]
        return own

    def services(self, *, fleet: bool) -> list[Service]:
        exe = str(Path(sys.executable).with_name("larmkedja"))
        env = {**os.environ, **self.env()}
        del env["LARM_DATABASE_ADMIN_URL"]  # the services run as larm_app only
        del env["LARM_GATEWAY_SECRET_KEY"]  # the gateway's own (process_env)
        env.pop("LARM_MQTT_TLS_CA", None)  # they use the loopback listener
        found = [
            Service(
                name="ingest-1",
                argv=(exe, "ingest"),
                env={**env, "LARM_INGEST_INSTANCE": "1", **self.process_env("ingest")},
            ),
            Service(
                name="engine-1", argv=(exe, "engine"), env={**env, **self.process_env("engine")}
            ),
            Service(name="api", argv=(exe, "api"), env={**env, **self.process_env("api")}),
            Service(
                name="gateway", argv=(exe, "gateway"), env={**env, **self.process_env("gateway")}
            ),
        ]
        if fleet:
            found.append(Service(name="fleet", argv=(exe, "simulate"), env=env))
        return found

    # --- up / down ---------------------------------------------------------------------

    def up(self, *, fleet: bool = False) -> list[str]:
        """Start whatever is not running; returns what was started now."""
        started: list[str] = []
        self.auth.ensure_services({a: self.secrets[a] for a in MQTT_ACCOUNTS.values()})
        if self.mosquitto.start():
            started.append("mosquitto")
        if self.postgres.start():
            started.append("postgres")
        self.postgres.ensure_database(DATABASE)
        settings = Settings(
            database_url=self.postgres.url(DATABASE),
            gateway_secret_key=self.secrets[GATEWAY_KEY],
        )
        db.migrate(
            settings.database_url,
            app_password=self.secrets["db-app"],
            config=db.retention_config(settings),
            role_passwords={role: self.secrets[role] for role in DB_ROLES.values()},
        )
        upgrade_sender_passwords(settings, settings.database_url)  # legacy hashes -> HMAC
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
        """Wait until every service runs. A silent system (no device events yet, e.g. after a
        restart without the fleet) is reported by /readyz but does not stop `up`."""
        url = f"http://127.0.0.1:{self.ports['api']}/readyz"
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not port_open("127.0.0.1", self.ports["sos_access"]):
                last = "the gateway is not listening yet"
                time.sleep(0.2)
                continue
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except urllib.error.HTTPError as exc:
                last = exc.read().decode(errors="replace")
                checks = json.loads(last).get("checks", {}) if exc.code == 503 else {}
                if checks and all(v for k, v in checks.items() if k != "not_silent"):
                    return
            except (OSError, ValueError) as exc:
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
