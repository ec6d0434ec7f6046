"""Small process helpers for the local stack: pid files, free ports, waiting for a port."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Children started by this process, so they can be reaped (and tests see no ResourceWarning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class StatePath:
    """A file or folder under its owner's `state_dir` (a class attribute: `pid_file =
    StatePath("x.pid")`)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __get__(self, owner: Any, cls: type | None = None) -> Path:
        return Path(owner.state_dir) / self._name


class StackError(RuntimeError):
    """The local stack could not be installed, started or stopped."""


def installed(program: str, *, how: str | None = None, also_in: str | None = None) -> str:
    """The path of `program` (on the PATH, else in the folders `also_in`); StackError if it is
    not installed, saying `how` to install it."""
    found = shutil.which(program) or (also_in and shutil.which(program, path=also_in))
    if not found:
        raise StackError(f"{program} is not installed" + (f" (run {how})" if how else ""))
    return found


# Ports to listen on come from below the kernel's ephemeral range, which every outgoing
# connection takes its local port from: a port the kernel handed out (bind to 0) could be a
# client's a moment later, and a server started on it then fails for as long as that client
# stays connected (a Patroni replica's PostgreSQL did, its port taken by a connection of the
# same machine, and never came up: `bench --ha-latency`, 2026-12-07).
# PORTS_VARIABLE (`low-high`) narrows it to a slice: the test suite gives each of its workers
# (pytest-xdist) its own, so two workers never pick the same port between a pick and a bind
# (one did: "address already in use", tests/conftest.py). Child processes inherit it.
_LISTEN_PORTS = range(20000, 32000)
PORTS_VARIABLE = "DEVSTACK_PORTS"
_given: set[int] = set()


def _listen_ports() -> range:
    low, sep, high = os.environ.get(PORTS_VARIABLE, "").partition("-")
    if sep and low.isdigit() and high.isdigit() and int(low) < int(high):
        return range(int(low), int(high))
    return _LISTEN_PORTS


def share_ports(index: int, count: int) -> None:
    """Narrow `free_port`, in this process and those it starts, to slice `index` of `count`."""
    size = len(_LISTEN_PORTS) // count
    low = _LISTEN_PORTS.start + index * size
    os.environ[PORTS_VARIABLE] = f"{low}-{low + size}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now, outside the ephemeral range, not handed out before by this
    process."""
    low = _ephemeral_low()
    candidates = [p for p in _listen_ports() if p < low and p not in _given]
    for port in secrets.SystemRandom().sample(candidates, min(len(candidates), 200)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _given.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # all taken: the kernel's
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.05)
    raise StackError(f"{what} did not open {host}:{port} within {timeout:.0f} s")


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields and fields[0] == "Z":
            return False
    return True


def stop_pid(pid_file: Path, *, timeout: float = 15.0, sig: int = signal.SIGTERM) -> bool:
    """Stop the process named in `pid_file`; True if one was running."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    reap(pid)
    pid_file.unlink(missing_ok=True)
    return True


def spawn(
    argv: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    netns: str | None = None,
) -> int:
    """Start a detached background process; its pid goes to `pid_file`. As root, `user` runs it
    as that user (the process itself, not a `runuser` in front of it, so the pid is its own).
    `netns`: in that network namespace (`ip netns exec`, then `setpriv` drops to `user`; each
    execs the next, so the pid is still the process's own)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    as_other = user is not None and os.geteuid() == 0
    if netns is not None:
        argv = [*in_netns(netns, user if as_other else None), *argv]
        as_other = False
    with log_file.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - argv is built by the stack, never from input
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
            user=user if as_other else None,
            group=pwd.getpwnam(user).pw_gid if as_other and user else None,
            extra_groups=[] if as_other else None,
        )
    _CHILDREN[proc.pid] = proc
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def in_netns(netns: str, user: str | None) -> list[str]:
    """The command prefix that runs a program in network namespace `netns` (as `user`)."""
    ip = installed("ip", how="deploy/local/install.sh", also_in="/usr/sbin:/sbin")
    prefix = [ip, "netns", "exec", netns]
    if user is not None:
        pw = pwd.getpwnam(user)
        prefix += [
            "setpriv",
            f"--reuid={pw.pw_uid}",
            f"--regid={pw.pw_gid}",
            "--clear-groups",
            "--",
        ]
    return prefix


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, …), from /proc."""
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat_file.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def signal_tree(pid: int, sig: int) -> None:
    """Send `sig` to `pid` and everything below it (the parent first, so it starts no more)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    for _ in range(2):  # a child forked while we looked is caught the second time
        for child in descendants(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, sig)


def pause_pid(pid: int, *, resume: bool = False) -> None:
    """A hung host: stop `pid` and its children (SIGSTOP), or let them run on (SIGCONT)."""
    signal_tree(pid, signal.SIGCONT if resume else signal.SIGSTOP)


def reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


def run(argv: Sequence[str], *, what: str, user: str | None = None, **kw: object) -> str:
    """Run a command to completion; a failure raises StackError with its output."""
    full = [*as_user(user), *argv]
    proc = subprocess.run(full, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]  # noqa: S603
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()[-2000:]
        raise StackError(f"{what} failed ({proc.returncode}): {out}")
    return str(proc.stdout)


def as_user(user: str | None) -> list[str]:
    if user is None or os.geteuid() != 0:
        return []
    return ["runuser", "-u", user, "--"]


def ensure_traversable_by(path: Path, user: str) -> None:
    """Let `user` reach `path` (add only the search bit on ancestors that lack it).

    PostgreSQL refuses to run as root, so as root the cluster runs as `postgres`; a clone in a
    private temp dir (mode 700) must then be traversable by it.
    """
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(user)
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid == pw.pw_uid or st.st_mode & stat.S_IXOTH:
            continue
        parent.chmod(st.st_mode | stat.S_IXOTH)


def chown_to(path: Path, user: str) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
