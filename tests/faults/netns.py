"""A node on the far side of a link that can be cut: a network namespace joined to the root
namespace by a veth pair with private /30 addresses. `cut` makes the link silent in both
directions (a `blackhole` qdisc on each end drops every packet as if it were sent: no RST, no
ICMP, no error to the sender; the kernel here has no netem), `heal` lifts it, and TCP's
retransmits carry on from where they were.

Names carry the test process's pid (`lk-<pid>-<n>`): `node` deletes its namespace, veth and
the processes in it even when the test fails, and removes what a killed test run left."""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from devstack.procs import in_netns, pid_alive

# iproute2 (deploy/local/install.sh); a missing tool fails the test, it does not skip it.
IP = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin") or "ip"
TC = shutil.which("tc", path="/usr/sbin:/sbin:/usr/bin:/bin") or "tc"
SUBNETS = ipaddress.IPv4Network("10.201.0.0/16")
_STALE_NS = re.compile(r"^lk-(\d+)-\d+$")
_STALE_LINK = re.compile(r"^lk(\d+)-\d+o$")
_counter = itertools.count()


class NetnsUnavailable(RuntimeError):
    """This machine does not let us make a network namespace (not root, or no netns)."""


@dataclass(frozen=True, kw_only=True)
class Node:
    name: str
    outer: str  # the veth end in the root namespace
    inner: str  # the veth end in the node's namespace
    outer_ip: str
    inner_ip: str

    @property
    def network(self) -> str:
        """The link's /30: both ends' addresses."""
        return str(ipaddress.IPv4Interface(f"{self.outer_ip}/30").network)

    def inside(self, *argv: str) -> list[str]:
        """`argv` run in the node's namespace."""
        return [*in_netns(self.name, None), *argv]

    def cut(self) -> None:
        """Drop every packet on the link, both ways, silently."""
        _run(TC, "qdisc", "add", "dev", self.outer, "root", "blackhole")
        _run(*self.inside(TC, "qdisc", "add", "dev", self.inner, "root", "blackhole"))

    def heal(self) -> None:
        _run(TC, "qdisc", "del", "dev", self.outer, "root")
        _run(*self.inside(TC, "qdisc", "del", "dev", self.inner, "root"))


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {(proc.stdout + proc.stderr).strip()}")
    return proc


def _outer(name: str) -> str:
    """The root namespace's end of namespace `name`'s veth (`lk-1234-0` → `lk1234-0o`)."""
    return name.replace("-", "", 1) + "o"


def namespaces() -> list[str]:
    out = _run(IP, "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _remove(name: str, outer: str | None = None) -> None:
    """Kill what runs in namespace `name`, then delete its veth and the namespace."""
    for pid in _run(IP, "netns", "pids", name, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    if outer is not None:
        _run(IP, "link", "del", outer, check=False)
    _run(IP, "netns", "del", name, check=False)  # the veth pair goes with its inner end


def remove_stale() -> None:
    """What test runs whose process is gone left (killed before their teardown): their
    namespaces with whatever runs in them, and their veths (a namespace whose name is gone
    may live on a while, and its veth with it)."""
    for name in namespaces():
        match = _STALE_NS.match(name)
        if match and not pid_alive(int(match.group(1))):
            _remove(name, _outer(name))
    for link in re.findall(
        r"^\d+: (lk\d+-\d+o)@", _run(IP, "-o", "link", check=False).stdout, re.M
    ):
        match = _STALE_LINK.match(link)
        if match and not pid_alive(int(match.group(1))):
            _run(IP, "link", "del", link, check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 no address of the root namespace is in (another test run may hold one)."""
    out = _run(IP, "-4", "-o", "addr", "show", check=False).stdout
    used = [ipaddress.IPv4Interface(a).network for a in re.findall(r"inet (\S+)", out)]
    subnets = list(SUBNETS.subnets(new_prefix=30))
    start = (os.getpid() * 7 + next(_counter)) % len(subnets)
    for k in range(len(subnets)):
        net = subnets[(start + k) % len(subnets)]
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free /30 in 10.201.0.0/16")


@contextlib.contextmanager
def node() -> Iterator[Node]:
    """A fresh namespace with `lo` up and a veth to the root namespace; always removed."""
    remove_stale()
    n = next(_counter)
    name = f"lk-{os.getpid()}-{n}"
    outer_ip, inner_ip = (str(a) for a in _free_subnet().hosts())
    made = _run(IP, "netns", "add", name, check=False)
    if made.returncode != 0:
        raise NetnsUnavailable(f"ip netns add: {made.stderr.strip()}")
    it = Node(
        name=name,
        outer=_outer(name),
        inner=_outer(name)[:-1] + "i",
        outer_ip=outer_ip,
        inner_ip=inner_ip,
    )
    try:
        _run(IP, "link", "add", it.outer, "type", "veth", "peer", "name", it.inner, "netns", name)
        _run(IP, "addr", "add", f"{outer_ip}/30", "dev", it.outer)
        _run(IP, "link", "set", it.outer, "up")
        _run(IP, "-n", name, "addr", "add", f"{inner_ip}/30", "dev", it.inner)
        _run(IP, "-n", name, "link", "set", it.inner, "up")
        _run(IP, "-n", name, "link", "set", "lo", "up")
        yield it
    finally:
        _remove(name, it.outer)
