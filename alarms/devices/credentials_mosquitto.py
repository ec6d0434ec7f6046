"""Who may do what on the broker: Mosquitto's password file (PBKDF2 hashes) and ACL file.
Each device may publish only to its own `larm/v1/{site}/{device_id}/events`; each service
process has an account of its own with only what it needs. Changes are applied with a reload
(SIGHUP), never a restart."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from larmkedja.events import DEVICE_ID_PATTERN, SITE_PATTERN
from larmkedja.secret_files import write_private

# What each kind of service account may do (nothing else; devices are added one by one). Each
# process has an account of its own, `{role}-{instance}` (svc-ingest-1, svc-engine-1, …): with
# `use_username_as_clientid` the account is the MQTT session, so no one else, device or
# service, can take over a process's session, its subscription or its backlog.
SERVICE_RULES: dict[str, tuple[str, ...]] = {
    "svc-ingest": ("topic read larm/v1/+/+/events", "topic write larm/v1/+/deadletter"),
    "svc-engine": ("topic write larm/v1/+/alerts", "topic write larm/v1/+/escalations"),
    # The protocol gateway publishes for the devices it maps.
    "svc-gateway": ("topic write larm/v1/+/+/events", "topic write larm/v1/+/deadletter"),
    # Subscribers of what the system publishes (alert consumers, the night patrol's system).
    "svc-monitor": (
        "topic read larm/v1/+/alerts",
        "topic read larm/v1/+/escalations",
        "topic read larm/v1/+/deadletter",
    ),
}
RESERVED_PREFIX = "svc-"  # no device may be called so
_INSTANCE = re.compile(r"^[A-Za-z0-9_]{1,32}$")
# Mosquitto 2.0's password file format (`mosquitto_passwd`): PBKDF2-HMAC-SHA512, written here
# so that no password is ever on a command line. The passwords are 192-bit random tokens, so the
# iteration count guards nothing a guess could reach; mosquitto's own default is kept, which
# keeps a reconnect storm of 250,000 devices cheap for the broker.
_ITERATIONS = 101


class AuthError(RuntimeError):
    """A device or service account could not be changed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    username: str
    password: str
    site: str
    device_id: str
    topic: str


def service_account(role: str, instance: str = "1") -> str:
    """The broker account of one service process, e.g. `svc-ingest-1`."""
    if role not in SERVICE_RULES or not _INSTANCE.fullmatch(instance):
        raise AuthError(f"no such service account: {role}-{instance}")
    return f"{role}-{instance}"


def _role_of(account: str) -> str:
    role = next((r for r in SERVICE_RULES if account.startswith(f"{r}-")), None)
    if role is None or not _INSTANCE.fullmatch(account[len(role) + 1 :]):
        raise AuthError(f"no such service account: {account}")
    return role


def password_line(username: str, password: str) -> str:
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS, 64)
    b64 = base64.b64encode
    return f"{username}:$7${_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


class BrokerAuth:
    def __init__(
        self, *, directory: Path, pid_file: Path | None = None, more_pid_files: Sequence[Path] = ()
    ) -> None:
        self.directory = directory
        self.password_file = directory / "passwd"
        self.acl_file = directory / "acl"
        self._devices_file = directory / "devices.json"
        self._lock_file = directory / ".lock"
        # Every broker that reads these files (two receiving paths: two brokers, one file set).
        self._pid_files = [p for p in (pid_file, *more_pid_files) if p is not None]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
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

    def _lines(self) -> dict[str, str]:
        if not self.password_file.exists():
            return {}
        found = {}
        for line in self.password_file.read_text().splitlines():
            if ":" in line:
                found[line.split(":", 1)[0]] = line
        return found

    def _write(self, lines: dict[str, str], devices: dict[str, str]) -> None:
        write_private(self.password_file, "".join(f"{line}\n" for line in lines.values()))
        write_private(self._devices_file, json.dumps(devices, indent=1, sort_keys=True))
        acl = ["# written by larmkedja; edits are overwritten", ""]
        for account in sorted(a for a in lines if a.startswith(RESERVED_PREFIX)):
            acl += [f"user {account}", *SERVICE_RULES[_role_of(account)], ""]
        for device_id, site in sorted(devices.items()):
            acl += [f"user {device_id}", f"topic write larm/v1/{site}/{device_id}/events", ""]
        write_private(self.acl_file, "\n".join(acl))

    def ensure_services(self, passwords: dict[str, str]) -> None:
        """Service accounts (`svc-ingest-1`, …) with the given passwords; the ACL written."""
        for account in passwords:
            _role_of(account)
        with self._locked():
            lines = self._lines()
            lines.update({a: password_line(a, pw) for a, pw in passwords.items()})
            self._write(lines, self._devices())
        self.reload()

    def provision(self, *, site: str, device_id: str) -> Credentials:
        """New credentials for a device (its old password, if any, stops working)."""
        return self.provision_many(site=site, device_ids=[device_id])[0]

    def provision_many(self, *, site: str, device_ids: list[str]) -> list[Credentials]:
        """`provision` for many devices of a site at once: one write of the files, one reload."""
        for device_id in device_ids:
            if not re.fullmatch(SITE_PATTERN, site) or not re.fullmatch(
                DEVICE_ID_PATTERN, device_id
            ):
                raise AuthError("site or device_id outside the contract's patterns")
            if device_id.startswith(RESERVED_PREFIX):
                raise AuthError(f"device ids starting with {RESERVED_PREFIX!r} are reserved")
        made = [
            Credentials(
                username=device_id,
                password=secrets.token_urlsafe(24),
                site=site,
                device_id=device_id,
                topic=f"larm/v1/{site}/{device_id}/events",
            )
            for device_id in device_ids
        ]
        with self._locked():
            devices, lines = self._devices(), self._lines()
            for creds in made:
                devices[creds.device_id] = site
                lines[creds.device_id] = password_line(creds.device_id, creds.password)
            self._write(lines, devices)
        self.reload()
        return made

    def revoke(self, *, device_id: str) -> bool:
        with self._locked():
            devices, lines = self._devices(), self._lines()
            if device_id not in devices:
                return False
            del devices[device_id]
            lines.pop(device_id, None)
            self._write(lines, devices)
        self.reload()
        return True

    def reload(self) -> None:
        """Make every broker re-read the password and ACL files (no restart)."""
        for pid_file in self._pid_files:
            try:
                pid = int(pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # no broker running: it reads the files when it starts
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
