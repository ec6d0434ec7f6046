"""A slow disk on one database machine, for the HA fault test (`make test-ha`).

`strace` attaches to every PostgreSQL process of the node (the postmaster and each of its
children) and follows the ones forked later (`-f`: a new backend is slowed too), delaying the
entry of every call that waits for the disk to make data durable (the fsync family) by
`delay_s`. Nothing fails and nothing is lost: the node is only slow, as one with a dying disk,
a RAID rebuild or a saturated SAN is, and Patroni sees nothing wrong with it. Writes into the
page cache stay fast, as they do on such a disk (only a flush waits); so the node must run with
`fsync = on` (`durable=True`), else PostgreSQL never calls them.

A process attached with `-p` stops at every system call (strace's seccomp filter works only for
a command it starts itself), so the slowed node also pays strace's overhead on every call.

Stopping strace (SIGINT) detaches it and the node is normal again at once. `SlowDisk` is a
context manager and also checks, when it ends, that no process of the node is still traced (a
leftover strace would hang the next test's shutdown).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from devstack.patroni import PatroniNode
from devstack.procs import descendants
from tests.faults.conftest import die_with_parent
from tests.helpers import wait_until

STRACE = "/usr/bin/strace"
# The calls that wait for the disk: WAL flushes (fdatasync, the default wal_sync_method on
# Linux), data file syncs at checkpoints (fsync), writeback requests (sync_file_range), syncfs.
SYNC_CALLS = "fsync,fdatasync,sync_file_range,syncfs"


def traced_by(pid: int) -> int:
    """The pid tracing `pid` (0: none, or `pid` is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("TracerPid:"):
            return int(line.split()[1])
    return 0


class SlowDisk:
    """While entered, every flush of `node`'s PostgreSQL takes `delay_s` more."""

    def __init__(self, *, node: PatroniNode, delay_s: float, log: Path) -> None:
        self.node = node
        self.delay_s = delay_s
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None

    def pids(self) -> list[int]:
        postmaster = self.node.postmaster_pid()
        if postmaster is None:
            raise RuntimeError(f"{self.node.name}: PostgreSQL does not run")
        return [postmaster, *descendants(postmaster)]

    def start(self) -> None:
        pids = self.pids()
        delay_us = int(self.delay_s * 1_000_000)
        argv = [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", f"trace={SYNC_CALLS}"]
        argv += ["-e", f"inject={SYNC_CALLS}:delay_enter={delay_us}"]
        for pid in pids:
            argv += ["-p", str(pid)]
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
            )
        proc = self._proc
        # Attached once the postmaster is traced (strace attaches the -p list in order, the
        # postmaster first: a child it forks from then on is followed).
        wait_until(
            lambda: traced_by(pids[0]) == proc.pid or proc.poll() is not None,
            timeout=10,
            what="strace attached",
        )
        if proc.poll() is not None:
            raise RuntimeError(f"strace ended at once ({proc.returncode}); see {self._log}")
        missed = [p for p in self._pids_or_none() if traced_by(p) != proc.pid]
        wait_until(
            lambda: all(traced_by(p) == proc.pid for p in missed if Path(f"/proc/{p}").exists()),
            timeout=10,
            what=f"strace attached to every process of {self.node.name}",
        )

    def stop(self) -> None:
        """Detach (SIGINT: strace lets every tracee run on), and make sure it did."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)  # a call in its delay finishes it first
            except subprocess.TimeoutExpired:
                proc.kill()  # the kernel detaches a dead tracer's tracees
                proc.wait()
        deadline = time.monotonic() + 5
        left = [p for p in self._pids_or_none() if traced_by(p) == proc.pid]
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [p for p in left if traced_by(p) == proc.pid]
        if left:
            raise RuntimeError(f"{self.node.name}: still traced after strace ended: {left}")

    def _pids_or_none(self) -> list[int]:
        with contextlib.suppress(RuntimeError):
            return self.pids()
        return []

    @property
    def active(self) -> bool:
        return self._proc is not None

    def __enter__(self) -> SlowDisk:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
