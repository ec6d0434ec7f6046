"""A PostgreSQL + TimescaleDB cluster of our own under the state dir, on loopback only.

PostgreSQL refuses to run as root; as root the cluster runs as the `postgres` system user.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg

from devstack.procs import (
    StackError,
    StatePath,
    as_user,
    chown_to,
    ensure_traversable_by,
    read_pid,
    run,
)
from larmkedja.secret_files import write_private

PG_ROOT = Path("/usr/lib/postgresql")


def postgres_os_user() -> str | None:
    """The system user PostgreSQL runs as: `postgres` when we are root (PostgreSQL refuses to
    run as root), else ourselves (None)."""
    return "postgres" if os.geteuid() == 0 else None


def pg_bin_dir() -> Path:
    """Newest installed PostgreSQL that has TimescaleDB."""
    versions = sorted(
        (p for p in PG_ROOT.glob("*") if p.name.isdigit()), key=lambda p: int(p.name), reverse=True
    )
    for version in versions:
        share = Path(f"/usr/share/postgresql/{version.name}/extension/timescaledb.control")
        if share.exists():
            return version / "bin"
    raise StackError("no PostgreSQL with TimescaleDB found (run deploy/local/install.sh)")


@dataclass(kw_only=True)
class Postgres:
    state_dir: Path
    port: int
    host: str = "127.0.0.1"
    superuser: str = "larmkedja"
    # Tests trade crash safety of the test cluster for speed; `make up` keeps it durable.
    durable: bool = True
    # More server settings (the bench sets `track_commit_timestamp` to time each commit).
    extra_settings: dict[str, str] = field(default_factory=dict)
    os_user: str | None = field(default_factory=postgres_os_user)

    data_dir = StatePath("data")
    log_file = StatePath("postgres.log")
    password_file = StatePath("password")

    def password(self) -> str:
        if not self.password_file.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            write_private(self.password_file, secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    def url(self, dbname: str = "larmkedja") -> str:
        pw = quote(self.password(), safe="")
        return f"postgresql://{self.superuser}:{pw}@{self.host}:{self.port}/{dbname}"

    def _conf(self) -> str:
        settings = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "shared_preload_libraries": "'timescaledb'",
            "timescaledb.telemetry_level": "off",
            "max_connections": "200",
            "shared_buffers": "256MB",
            "max_wal_size": "2GB",
            "checkpoint_timeout": "10min",
            "log_min_messages": "warning",
            "log_min_error_statement": "panic",
        }
        if self.durable:
            # The whole pages written after a checkpoint, compressed: less WAL to write (and,
            # on the HA nodes, for a replica to write before a commit returns). Not for the
            # tests' cluster, which writes no whole pages after a checkpoint (full_page_writes).
            settings["wal_compression"] = "lz4"
        else:
            settings |= {"fsync": "off", "full_page_writes": "off", "synchronous_commit": "off"}
        settings |= self.extra_settings
        return "".join(f"{k} = {v}\n" for k, v in settings.items())

    def init(self) -> bool:
        """initdb if there is no cluster yet; True if one was made now."""
        if (self.data_dir / "PG_VERSION").exists():
            return False
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        pwfile = self.state_dir / "initdb.pw"
        write_private(pwfile, self.password() + "\n")
        if self.os_user:
            ensure_traversable_by(self.state_dir, self.os_user)
            chown_to(self.state_dir, self.os_user)
        try:
            run(
                [
                    str(pg_bin_dir() / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.superuser,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                what="initdb",
                user=self.os_user,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        return True

    def running(self) -> bool:
        """The cluster's postmaster is alive (whatever port it listens on)."""
        pid_file = self.data_dir / "postmaster.pid"
        return pid_file.exists() and read_pid(pid_file) is not None

    def start(self, *, timeout: float = 60.0) -> bool:
        """Start (init first if needed); True if it was started now."""
        self.init()
        if self.running():
            return False
        (self.data_dir / "larmkedja.conf").write_text(self._conf())
        conf = self.data_dir / "postgresql.conf"
        include = "include_if_exists = 'larmkedja.conf'\n"
        if include not in conf.read_text():
            with conf.open("a") as f:
                f.write(include)
        if self.os_user:
            chown_to(self.state_dir, self.os_user)
        run(
            [
                str(pg_bin_dir() / "pg_ctl"),
                "start",
                "-w",
                "-t",
                str(int(timeout)),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
            ],
            what="pg_ctl start",
            user=self.os_user,
        )
        return True

    def stop(self, *, mode: str = "fast") -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        run(
            [str(pg_bin_dir() / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data_dir)],
            what="pg_ctl stop",
            user=self.os_user,
        )
        return True

    def ensure_database(self, name: str, *, template: str | None = None) -> bool:
        """Create `name` if missing; True if it was created now."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if found:
                return False
            sql = psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name))
            if template:
                sql = psycopg.sql.SQL("{} TEMPLATE {}").format(
                    sql, psycopg.sql.Identifier(template)
                )
            conn.execute(sql)
        return True

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)
                )
            )


__all__ = ["Postgres", "as_user", "pg_bin_dir"]
