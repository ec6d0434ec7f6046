"""deploy/: the compose stack, Prometheus, Grafana and Mosquitto files agree with each other and
with the local stack (the compose file is not run here: no Docker engine)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from alarms.devices.credentials_mosquitto import SERVICE_RULES
from devstack.mosquitto import Mosquitto
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    return data


def test_compose_has_every_part_with_health_checks_and_ordered_start() -> None:
    services = compose()["services"]
    assert {
        "mosquitto",
        "timescaledb",
        "ingest-1",
        "ingest-2",
        "engine",
        "api",
        "prometheus",
        "alertmanager",
        "grafana",
    } <= services.keys()
    for name, service in services.items():
        if service.get("restart") != "no":
            assert "healthcheck" in service, f"{name} has no health check"
    for name in ("ingest-1", "ingest-2", "engine", "api"):
        depends = services[name]["depends_on"]
        assert isinstance(depends, dict)
        assert depends["timescaledb"] == {"condition": "service_healthy"}
        assert depends["mosquitto"] == {"condition": "service_healthy"}
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb")


def test_every_file_compose_mounts_exists() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_the_compose_services_on_their_ports() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    services = compose()["services"]
    for job in config["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host, port = target.split(":")
            assert host in services, target
            env = services[host].get("environment", {})
            assert isinstance(env, dict)
            if host == "api":
                assert env["LARM_API_PORT"] == port
            else:
                assert port in ("9101", "9102", "9103")
                assert any(k.endswith("_METRICS_HOST") and v == "0.0.0.0" for k, v in env.items())


def _conf(path: Path) -> dict[str, str]:
    return _conf_text(path.read_text())


def test_the_broker_limits_are_the_same_in_compose_and_in_the_local_stack() -> None:
    compose_conf = _conf(DEPLOY / "mosquitto" / "mosquitto.conf")
    local = Mosquitto(state_dir=Path("/nonexistent"), port=1883, password_file=Path("/p"))
    local_conf = _conf_text(local.config_text())
    for key in (
        "persistence",
        "autosave_interval",
        "max_queued_messages",
        "max_inflight_messages",
        "persistent_client_expiration",
        "max_packet_size",
        "use_username_as_clientid",
    ):
        assert compose_conf[key] == local_conf[key], key
    assert compose_conf["allow_anonymous"] == "false"


def _conf_text(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            values.setdefault(key, value.strip())
    return values


def test_dashboards_use_the_provisioned_datasource_and_have_unique_ids() -> None:
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]["uid"]
    uids = []
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        uids.append(dashboard["uid"])
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == datasource
            assert panel["targets"], f"{path.name}: {panel['title']} has no query"
    assert len(uids) == len(set(uids)) == 4


def test_the_image_contains_every_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.search(r"include = \[(.*?)\]", pyproject)
    assert packages
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in re.findall(r'"(\w+)\*"', packages[1]):
        assert f"COPY {package} ./{package}" in dockerfile, package


# Where a published port may be reached from anywhere: the broker's TLS listener for devices
# and the gateway's receivers (each protocol authenticates its sender). All else: loopback.
PUBLIC_PORTS = {"mosquitto": {"8883"}, "gateway": {"5060", "5070", "5080"}}


def test_compose_publishes_nothing_unauthenticated_and_no_service_is_the_superuser() -> None:
    for name, service in compose()["services"].items():
        for mapping in service.get("ports", []):
            host_part, _, container = str(mapping).rpartition(":")
            if not host_part.startswith("127.0.0.1:"):
                assert container.split("/")[0] in PUBLIC_PORTS.get(name, set()), (name, mapping)
        url = str(service.get("environment", {}).get("LARM_DATABASE_URL", ""))
        if name != "migrate" and url:
            assert not url.startswith("postgresql://postgres:"), f"{name} runs as the superuser"
    assert "LARM_DATABASE_ADMIN_URL" not in str(compose()["x-larmkedja"])


def test_the_compose_acl_gives_each_account_what_the_local_stack_gives_its_kind() -> None:
    blocks: dict[str, set[str]] = {}
    user = ""
    for line in (DEPLOY / "mosquitto" / "acl").read_text().splitlines():
        if line.startswith("user "):
            user = line.split()[1]
            blocks[user] = set()
        elif line.startswith("topic ") and user:
            blocks[user].add(line)
    for account, rules in blocks.items():
        kind = account.rsplit("-", 1)[0]
        assert set(SERVICE_RULES[kind]) == rules, account
    passwd_job = str(compose()["services"]["mosquitto-passwd"]["command"])
    assert all(account in passwd_job for account in blocks)


def test_the_gateways_server_key_goes_to_the_gateway_and_migrate_only() -> None:
    """The key that makes SOS Access password hashes useless without it (issue 18): in the
    environment of the two processes that need it, never on a command line."""
    holders = {
        name
        for name, service in compose()["services"].items()
        if "LARM_GATEWAY_SECRET_KEY" in (service.get("environment") or {})
    }
    assert holders == {"gateway", "migrate"}
    assert "GATEWAY_SECRET_KEY" not in json.dumps(
        [s.get("command") for s in compose()["services"].values()]
    )


def test_the_local_stack_gives_the_server_key_to_the_gateway_alone(tmp_path: Path) -> None:
    from devstack.stack import Stack

    stack = Stack(state_dir=tmp_path)
    services = {s.name: s for s in stack.services(fleet=True)}
    key = stack.secrets["gateway-secret-key"]
    assert len(key) >= 32
    assert services["gateway"].env["LARM_GATEWAY_SECRET_KEY"] == key
    for name, service in services.items():
        assert key not in " ".join(service.argv)
        if name != "gateway":
            assert "LARM_GATEWAY_SECRET_KEY" not in service.env, name
    assert stack.env()["LARM_GATEWAY_SECRET_KEY"] == key  # .state/env (mode 600): `sender add`
