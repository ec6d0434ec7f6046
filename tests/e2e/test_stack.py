"""The local stack behind `make up` / `make down`, with real processes and mosquitto_pub."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from devstack.procs import read_pid
from devstack.stack import Stack
from tests.helpers import scalar, wait_until

pytestmark = pytest.mark.e2e


def test_up_is_idempotent_serves_health_and_stores_a_mosquitto_pub(stack: Stack) -> None:
    started = stack.up()
    assert {"mosquitto", "postgres", "ingest-1", "api"} <= set(started)
    assert stack.up() == []  # a second `up` is a no-op

    env_file = (stack.state_dir / "env").read_text()
    for name in ("LARM_MQTT_HOST", "LARM_MQTT_PORT", "LARM_API_URL", "LARM_DATABASE_URL"):
        assert f"export {name}=" in env_file
    env = stack.env()
    with urllib.request.urlopen(env["LARM_API_URL"] + "/readyz", timeout=5) as resp:
        checks = json.load(resp)["checks"]
    assert checks == {
        "database": True,
        "broker": True,
        "ingest": True,
        "engine": True,
        "not_silent": True,
    }
    with urllib.request.urlopen(env["LARM_API_URL"] + "/openapi.json", timeout=5) as resp:
        assert "/readyz" in json.load(resp)["paths"]

    event_id = str(uuid.uuid4())
    payload = json.dumps(
        {
            "v": 1,
            "event_id": event_id,
            "device_id": "d-000123",
            "ts": "2026-11-23T22:01:05.120+01:00",
            "kind": "alarm.button",
            "data": {},
        }
    )
    mosquitto_pub = shutil.which("mosquitto_pub")
    assert mosquitto_pub
    exe = str(Path(sys.executable).with_name("larmkedja"))
    provisioned = subprocess.run(
        [exe, "device", "provision", "--site", "solna", "--device", "d-000123"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    creds = json.loads(provisioned.stdout)
    assert creds["username"] == "d-000123" and creds["topic"] == "larm/v1/solna/d-000123/events"
    base = [mosquitto_pub, "-h", "127.0.0.1", "-p", env["LARM_MQTT_PORT"], "-q", "1"]
    anonymous = subprocess.run(
        [*base, "-t", creds["topic"], "-m", payload], capture_output=True, timeout=10, check=False
    )
    assert anonymous.returncode != 0  # anonymous access is off
    for _ in range(2):
        subprocess.run(
            [
                *base,
                "-u",
                creds["username"],
                "-P",
                creds["password"],
                "-t",
                creds["topic"],
                "-m",
                payload,
            ],
            check=True,
            timeout=10,
        )
    url = env["LARM_DATABASE_URL"]
    wait_until(
        lambda: scalar(url, "SELECT count(*) FROM events WHERE event_id = %s", (event_id,)) == 1,
        timeout=1.0,
        what="the event stored",
    )


def test_down_stops_what_up_started_and_nothing_else(stack: Stack, tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        stack.up()
        pids = {p.stem: read_pid(p) for p in (stack.state_dir / "run").glob("*.pid")}
        assert all(pids.values())
        stopped = stack.down()
        assert {"mosquitto", "postgres", "ingest-1", "api"} <= set(stopped)
        assert not any(read_pid(p) for p in (stack.state_dir / "run").glob("*.pid"))
        assert not stack.mosquitto.running()
        assert not stack.postgres.running()
        assert bystander.poll() is None  # not ours: left alone
        assert stack.down() == []
    finally:
        bystander.kill()
        bystander.wait()
