"""Who may do what on the broker: Mosquitto's password file (hashed by `mosquitto_passwd`) and
ACL file. Each device may publish only to its own `larm/v1/{site}/{device_id}/events`; each
service has an account with only what it needs. Changes are applied with a reload (SIGHUP),
never a restart."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from larmkedja.events import DEVICE_ID_PATTERN, SITE_PATTERN

# What each service account may do (nothing else; devices are added one by one).
SERVICE_RULES: dict[str, tuple[str, ...]] = {
    "svc-ingest": ("topic read larm/v1/+/+/events", "topic write larm/v1/+/deadletter"),
    "svc-engine": ("topic write larm/v1/+/alerts", "topic write larm/v1/+/escalations"),
    # The protocol gateway publishes for the devices it maps; a load generator likewise.
    "svc-gateway": ("topic write larm/v1/+/+/events", "topic write larm/v1/+/deadletter"),
    "svc-fleet": ("topic write larm/v1/+/+/events",),
    # Subscribers of what the system publishes (alert consumers, the night patrol's system).
    "svc-monitor": (
        "topic read larm/v1/+/alerts",
        "topic read larm/v1/+/escalations",
        "topic read larm/v1/+/deadletter",
    ),
}


class AuthError(RuntimeError):
    """A device or service account could not be changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    username: str
    password: str
    site: str
    device_id: str
    topic: str


def passwd_binary() -> str:
    found = shutil.which("mosquitto_passwd") or shutil.which(
        "mosquitto_passwd", path="/usr/bin:/usr/sbin"
    )
    if found is None:
        raise AuthError("mosquitto_passwd is not installed (package mosquitto)")
    return found


class BrokerAuth:
    def __init__(self, *, directory: Path, pid_file: Path | None = None) -> None:
        self.directory = directory
        self.password_file = directory / "passwd"
        self.acl_file = directory / "acl"
        self._devices_file = directory / "devices.json"
        self._lock_file = directory / ".lock"
        self._pid_file = pid_file

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock_file.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _devices(self) -> dict[str, str]:
        if not self._devices_file.exists():
            return {}
        data: dict[str, str] = json.loads(self._devices_file.read_text())
        return data

    def _passwd(self, *args: str) -> None:
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
        result = subprocess.run(  # noqa: S603 - mosquitto_passwd with checked arguments
            [passwd_binary(), *args], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise AuthError(f"mosquitto_passwd failed: {result.stderr.strip()}")
        self.password_file.chmod(0o600)

    def _write_acl(self, devices: dict[str, str]) -> None:
        lines = ["# written by larmkedja; edits are overwritten", ""]
        for user, rules in SERVICE_RULES.items():
            lines += [f"user {user}", *rules, ""]
        for device_id, site in sorted(devices.items()):
            lines += [f"user {device_id}", f"topic write larm/v1/{site}/{device_id}/events", ""]
        tmp = self.acl_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines))
        tmp.chmod(0o600)
        os.replace(tmp, self.acl_file)

    def ensure_services(self, passwords: dict[str, str]) -> None:
        """Service accounts with the given passwords; the ACL file written."""
        unknown = set(passwords) - set(SERVICE_RULES)
        if unknown:
            raise AuthError(f"no such service account: {sorted(unknown)}")
        with self._locked():
            for user, password in passwords.items():
                self._passwd("-b", str(self.password_file), user, password)
            self._write_acl(self._devices())

    def provision(self, *, site: str, device_id: str) -> Credentials:
        """New credentials for a device (its old password, if any, stops working)."""
        if not re.fullmatch(SITE_PATTERN, site) or not re.fullmatch(DEVICE_ID_PATTERN, device_id):
            raise AuthError("site or device_id outside the contract's patterns")
        if device_id in SERVICE_RULES:
            raise AuthError("a device may not take a service account's name")
        password = secrets.token_urlsafe(24)
        with self._locked():
            devices = self._devices()
            devices[device_id] = site
            self._passwd("-b", str(self.password_file), device_id, password)
            self._devices_file.write_text(json.dumps(devices, indent=1, sort_keys=True))
            self._write_acl(devices)
        self.reload()
        return Credentials(
            username=device_id,
            password=password,
            site=site,
            device_id=device_id,
            topic=f"larm/v1/{site}/{device_id}/events",
        )

    def revoke(self, *, device_id: str) -> bool:
        with self._locked():
            devices = self._devices()
            if device_id not in devices:
                return False
            del devices[device_id]
            self._passwd("-D", str(self.password_file), device_id)
            self._devices_file.write_text(json.dumps(devices, indent=1, sort_keys=True))
            self._write_acl(devices)
        self.reload()
        return True

    def reload(self) -> None:
        """Make the broker re-read the password and ACL files (no restart)."""
        if self._pid_file is None:
            return
        try:
            pid = int(self._pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return  # no broker running: it reads the files when it starts
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGHUP)
