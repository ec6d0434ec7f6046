"""The HA topology's other machines, as far as one machine can show them (`bench --ha-latency`,
its "off-path niced" runs).

In the field (docs/scaling.md, "a cell on 5 small VMs") the alarm's path runs on two machines:
the services' (broker, ingest, engine, API, one etcd member) and the primary database's (Patroni
and PostgreSQL). The replicas and the other etcd members have machines of their own, and of
them only a replica's WAL receiver is on the path (a commit waits until a replica has written
it). Here all share two cores, so their work (WAL replay, checkpoints, Patroni's loop, etcd's
heartbeats) takes the CPU from the path's processes as it never would on their own machines.
The same holds for the second service machine (the second path's broker and ingest, the second
engine): a dual-path device's alarm is taken from whichever path is first. This run gives that
work the lowest CPU priority (nice 19): it still runs, in the path's idle time; the WAL
receivers keep the normal priority, so what a commit waits for is unchanged.
The run without it is printed beside it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from devstack.ha_database import HaDatabase
from devstack.procs import descendants, read_pid

NICE = 19
ON_THE_PATH = b"walreceiver"  # a replica's process a commit waits for


def _title(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def lower_off_path(ha: HaDatabase, *, also: Sequence[int | None] = ()) -> list[int]:
    """Lower every process of the replicas' machines but their WAL receivers, the etcd members
    but the first (the one beside the services) and `also` (the second service machine's
    processes); returns the pids lowered."""
    primary = ha.primary()
    pids = [read_pid(member.pid_file) for member in ha.etcd[1:]] + list(also)
    for node in ha.nodes:
        if primary is not None and node.name == primary.name:
            continue
        pids.append(read_pid(node.pid_file))
        postmaster = node.postmaster_pid()
        if postmaster is not None:
            pids.append(postmaster)
            pids += [pid for pid in descendants(postmaster) if ON_THE_PATH not in _title(pid)]
    lowered = []
    for pid in pids:
        if pid is None:
            continue
        try:
            os.setpriority(os.PRIO_PROCESS, pid, NICE)
        except OSError:  # gone meanwhile
            continue
        lowered.append(pid)
    return lowered
