"""deploy/compose-ha.yml: the HA topology for Docker users has the shape docs/scaling.md gives it
and the local one (`make up-ha`, `make test-ha`) runs (the file is not run here: no Docker)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import yaml

from devstack.patroni import PatroniNode
from tests.conftest import ROOT
from tests.unit.test_deploy import PUBLIC_PORTS

DEPLOY = ROOT / "deploy"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose-ha.yml").read_text())
    return data


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def env(name: str) -> dict[str, str]:
    found: dict[str, str] = services()[name].get("environment", {})
    return found


def test_three_etcd_members_and_three_patroni_nodes_that_know_them_all() -> None:
    s = services()
    members = {n for n in s if n.startswith("etcd-")}
    nodes = {n for n in s if n.startswith("pg-")}
    assert members == {"etcd-1", "etcd-2", "etcd-3"}
    assert nodes == {"pg-1", "pg-2", "pg-3"}
    for member in members:
        assert env(member)["ETCD_INITIAL_CLUSTER"].count("=http://") == 3
    for node in nodes:
        hosts = env(node)["PATRONI_ETCD3_HOSTS"]
        assert all(f"{m}:2379" in hosts for m in members), node
        assert env(node)["PATRONI_NAME"] == node
        assert "timescaledb-ha" in s[node]["image"]
        assert "healthcheck" in s[node]


def test_patroni_is_configured_as_the_local_topology() -> None:
    """Synchronous replication, a TTL Patroni 4 accepts, pg_rewind, TimescaleDB preloaded."""
    compose_conf = yaml.safe_load((DEPLOY / "ha" / "patroni.yml").read_text())
    dcs = compose_conf["bootstrap"]["dcs"]
    local = PatroniNode(
        state_dir=ROOT / "nonexistent",
        name="pg1",
        pg_port=5432,
        api_port=8008,
        etcd_hosts=[],
        superuser_password="x",
        replication_password="y",
    ).cluster_config()
    for key in ("synchronous_mode", "ttl", "maximum_lag_on_failover", "primary_stop_timeout"):
        assert dcs[key] == local[key], key
    assert dcs["ttl"] >= 20
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["wal_log_hints"] == "on"
    shared = local["postgresql"]["parameters"]
    for name in ("synchronous_commit", "wal_compression"):
        assert dcs["postgresql"]["parameters"][name] == shared[name], name
    params = compose_conf["postgresql"]["parameters"]
    assert params["shared_preload_libraries"] == "timescaledb"


def test_every_service_reaches_the_primary_by_all_three_hosts() -> None:
    for name in services():
        url = env(name).get("LARM_DATABASE_URL")
        if url is None:
            continue
        parts = urlsplit(url)
        hosts = parts.netloc.rsplit("@", 1)[1].split(",")
        assert hosts == ["pg-1:5432", "pg-2:5432", "pg-3:5432"], name
        assert "target_session_attrs=read-write" in parts.query, name
        assert parts.path == "/larmkedja", name
        if name != "migrate":
            assert not url.startswith("postgresql://postgres:"), f"{name} runs as the superuser"


def test_two_receiving_paths_sharing_one_set_of_accounts() -> None:
    s = services()
    brokers = ["mosquitto-a", "mosquitto-b"]
    configs = [
        next(v for v in s[b]["volumes"] if v.endswith(":/mosquitto/config")) for b in brokers
    ]
    assert configs[0] == configs[1], "the brokers must read the same password and ACL files"
    data = [next(v for v in s[b]["volumes"] if v.endswith(":/mosquitto/data")) for b in brokers]
    assert data[0] != data[1], "the paths share no state"
    assert {env("ingest-a")["LARM_MQTT_HOST"], env("ingest-b")["LARM_MQTT_HOST"]} == set(brokers)
    assert env("ingest-a")["LARM_MQTT_USERNAME"] != env("ingest-b")["LARM_MQTT_USERNAME"]
    for name in ("gateway", "engine-1", "engine-2", "api-1", "api-2"):
        paths = json.loads(env(name)["LARM_MQTT_PATHS"])
        assert paths == [f"{b}:1883" for b in brokers], name


def test_two_engines_two_apis_each_their_own() -> None:
    assert env("engine-1")["LARM_ENGINE_INSTANCE"] != env("engine-2")["LARM_ENGINE_INSTANCE"]
    assert env("engine-1")["LARM_MQTT_USERNAME"] != env("engine-2")["LARM_MQTT_USERNAME"]
    accounts = str(services()["mosquitto-passwd"]["command"])
    acl = (DEPLOY / "mosquitto" / "acl").read_text()
    for name in ("ingest-a", "ingest-b", "engine-1", "engine-2", "gateway"):
        account = env(name)["LARM_MQTT_USERNAME"]
        assert account in accounts and f"user {account}\n" in acl, account
    assert {"api-1", "api-2"} <= services().keys()


def test_health_checks_and_nothing_published_unauthenticated() -> None:
    public = {**PUBLIC_PORTS, "mosquitto-a": {"8883"}, "mosquitto-b": {"8883"}}
    for name, service in services().items():
        if service.get("restart") != "no":
            assert "healthcheck" in service, f"{name} has no health check"
        for mapping in service.get("ports", []):
            host_part, _, container = str(mapping).rpartition(":")
            if not host_part.startswith("127.0.0.1:"):
                assert container.split("/")[0] in public.get(name, set()), (name, mapping)


def test_every_file_it_mounts_exists() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
