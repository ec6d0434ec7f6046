"""The gateway as `make up` runs it: a real process behind the stack's ports, its senders
added with the CLI, an SOS Access alarm from the public client reaching the operator queue."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import httpx
import pytest

from devstack.stack import Stack
from tests.gateway.crypto_shim import install
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e
install()


def cli(stack: Stack, *args: str) -> str:
    exe = str(Path(sys.executable).with_name("larmkedja"))
    done = subprocess.run(
        [exe, *args], env={**os.environ, **stack.env()}, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    return done.stdout


def test_an_sos_access_alarm_and_a_dc09_link_test_through_the_running_stack(stack: Stack) -> None:
    from dc09_spt.msg.dc09_msg import dc09_msg
    from sos_access.client import SOSAccessClient

    started = stack.up()
    assert "gateway" in started
    added = json.loads(
        cli(stack, "sender", "add", "--protocol", "sos-access", "--sender", "TX9",
            "--site", "solna", "--device", "sos-e2e")
    )  # fmt: skip
    assert len(str(added["password"])) == 15  # shown once; only its hash is stored
    panel = json.loads(
        cli(stack, "sender", "add", "--protocol", "sia-dc09", "--sender", "4711",
            "--site", "solna", "--device", "dc09-e2e")
    )  # fmt: skip
    key = bytes.fromhex(str(panel["aes_key"]))  # a key unless the administrator says --plain
    cli(stack, "sender", "add", "--protocol", "scaip", "--sender", "4712", "--site", "solna",
        "--device", "scaip-e2e", "--plain")  # fmt: skip
    lines = cli(stack, "sender", "list").splitlines()
    assert any(line.split()[:2] == ["sos-access", "TX9"] for line in lines)
    assert next(line for line in lines if "4712" in line).split()[-1] == "plain"
    with pytest.raises(subprocess.CalledProcessError):  # a transmitter always has a password
        cli(stack, "sender", "add", "--protocol", "sos-access", "--sender", "TX8",
            "--site", "solna", "--device", "sos-e2e-2", "--plain")  # fmt: skip
    token = cli(stack, "token", "create", "--role", "operator", "--name", "e2e").strip()

    env = stack.env()
    sos_port = int(env["LARM_GATEWAY_SOS_ACCESS_PORT"])
    client = SOSAccessClient(
        transmitter_code="TX9", transmitter_type="SV300", authentication=str(added["password"]),
        receiver_id="larmkedja", receiver_address=("127.0.0.1", sos_port),
        use_single_receiver=True,
    )  # fmt: skip
    assert client.send_alarm(event_code="MA", reference="e2e-1").status == 0

    def queued() -> list[dict[str, object]]:
        response = httpx.get(
            env["LARM_API_URL"] + "/api/v1/alarms?state=open",
            headers={"Authorization": f"Bearer {token}"}, timeout=5,
        )  # fmt: skip
        return [a for a in response.json() if a["device_id"] == "sos-e2e"]

    wait_until(lambda: len(queued()) == 1, timeout=10, what="the alarm in the operator queue")
    assert queued()[0]["kind"] == "alarm.button" and queued()[0]["site"] == "solna"

    poll = dc09_msg("4711", key=key).dc09poll().encode()
    with socket.create_connection(("127.0.0.1", int(env["LARM_GATEWAY_DC09_PORT"])), 5) as s:
        s.sendall(poll)
        assert dc09_msg("4711", key=key).dc09answer(0, s.recv(1024).decode())[0] == "ACK"

    metrics_url = f"http://127.0.0.1:{env['LARM_GATEWAY_METRICS_PORT']}/metrics"
    with urllib.request.urlopen(metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    assert 'larm_gateway_messages_total{protocol="sos-access",result="accepted"} 1.0' in text
    assert 'larm_gateway_messages_total{protocol="sia-dc09",result="accepted"} 1.0' in text
