"""Fixtures the integration tests share."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from alarms.devices.credentials_mosquitto import BrokerAuth
from devstack.mosquitto import Mosquitto
from devstack.procs import free_port


@dataclass
class SecureBroker:
    server: Mosquitto
    auth: BrokerAuth
    services: dict[str, str]


@pytest.fixture
def secure_broker(state_dir: Path) -> Iterator[SecureBroker]:
    root = state_dir / f"mq-auth-{uuid.uuid4().hex[:6]}"
    auth = BrokerAuth(directory=root / "auth", pid_file=root / "mosquitto.pid")
    services = {
        "svc-ingest-1": secrets.token_urlsafe(12),
        "svc-engine-1": secrets.token_urlsafe(12),
    }
    auth.ensure_services(services)
    server = Mosquitto(
        state_dir=root, port=free_port(), password_file=auth.password_file, acl_file=auth.acl_file
    )
    server.start()
    try:
        yield SecureBroker(server, auth, services)
    finally:
        server.stop()
