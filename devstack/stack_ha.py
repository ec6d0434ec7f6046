"""`make up-ha`: the high-availability topology on this machine, under `.state/ha/`.

What docs/scaling.md describes for one municipality, with every "machine" a set of processes on
loopback: three etcd members and three Patroni nodes (PostgreSQL 15 + TimescaleDB, synchronous
replication), two Mosquitto brokers that share nothing but their password and ACL files (two
receiving paths), one ingest process per broker, two engines (one owns the deadlines, one
stands by), two API processes and the gateway (sending to both brokers). Every process reaches
the database by one multi-host URL with `target_session_attrs=read-write`.

Nothing of `make up` (`.state/`) is touched; `make down-ha` stops it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from alarms.devices.credentials_mosquitto import BrokerAuth
from devstack.ha_database import HaDatabase, ha_port_names
from devstack.mosquitto import Mosquitto
from devstack.stack import DATABASE, MQTT_ACCOUNTS, Service, Stack

HA_PORTS = ("mqtt2", "api2", "ingest2_metrics", "engine2_metrics")


class HaStack(Stack):
    def __init__(self, *, state_dir: Path, scrape_interval: str = "5s") -> None:
        super().__init__(state_dir=state_dir, scrape_interval=scrape_interval)
        mq2 = self.state_dir / "mosquitto2"
        self.auth = BrokerAuth(
            directory=self.auth.directory,
            pid_file=self.mosquitto.pid_file,
            more_pid_files=[mq2 / "mosquitto.pid"],
        )
        self.mosquitto2 = Mosquitto(
            state_dir=mq2,
            port=self.ports["mqtt2"],
            password_file=self.auth.password_file,
            acl_file=self.auth.acl_file,
        )
        self.ha = HaDatabase(state_dir=self.state_dir / "db", ports=self.ports)
        self.postgres = self.ha

    def port_names(self) -> list[str]:
        return [*super().port_names(), *HA_PORTS, *ha_port_names()]

    def database_url(self, role: str = "larm_app") -> str:
        pw = self.secrets["db-app" if role == "larm_app" else role]
        return self.ha.url(DATABASE, user=role, password=pw)

    def env(self) -> dict[str, str]:
        paths = [f"127.0.0.1:{self.ports['mqtt']}", f"127.0.0.1:{self.ports['mqtt2']}"]
        return {
            **super().env(),
            "LARM_MQTT_PATHS": json.dumps(paths),
            "LARM_MQTT_MORE_BROKER_PID_FILES": json.dumps([str(self.mosquitto2.pid_file)]),
        }

    def services(self, *, fleet: bool) -> list[Service]:
        """Two of each, ingest-2 on the second broker, the second API on its own port."""
        found = []
        second = {
            "ingest": {
                "LARM_INGEST_INSTANCE": "2",
                "LARM_MQTT_PORT": str(self.ports["mqtt2"]),
                "LARM_INGEST_METRICS_PORT": str(self.ports["ingest2_metrics"]),
            },
            "engine": {
                "LARM_ENGINE_INSTANCE": "2",
                "LARM_ENGINE_METRICS_PORT": str(self.ports["engine2_metrics"]),
            },
            "api": {"LARM_API_PORT": str(self.ports["api2"])},
        }
        exe = str(Path(sys.executable).with_name("larmkedja"))
        for service in super().services(fleet=fleet):
            found.append(service)
            kind = service.name.split("-")[0]
            if kind in second:
                # A second process of the same kind and account (ingest's session is per
                # broker: the same account on the other broker is another session).
                env = {**service.env, **second[kind]}
                found.append(Service(name=f"{kind}-2", argv=(exe, kind), env=env))
        return found

    def up(self, *, fleet: bool = False) -> list[str]:
        # The account files first: the second broker will not start without them.
        self.auth.ensure_services({a: self.secrets[a] for a in MQTT_ACCOUNTS.values()})
        started = ["mosquitto2"] if self.mosquitto2.start() else []
        return started + super().up(fleet=fleet)

    def down(self) -> list[str]:
        stopped = super().down()
        if self.mosquitto2.stop():
            stopped.append("mosquitto2")
        return stopped

    def status(self) -> dict[str, bool]:
        found = super().status()
        found["mosquitto2"] = self.mosquitto2.running()
        for member in self.ha.etcd:
            found[member.name] = member.running()
        for node in self.ha.nodes:
            found[node.name] = node.running()
        return found
