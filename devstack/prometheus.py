"""A Prometheus of our own for the local stack: the rules of deploy/prometheus/, loopback
targets, state under the state dir (the Debian package's binary)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devstack.procs import StatePath, installed, read_pid, spawn, stop_pid, wait_for_port

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


@dataclass(kw_only=True)
class Prometheus:
    state_dir: Path
    port: int
    targets: dict[str, list[str]] = field(default_factory=dict)  # job → host:port
    scrape_interval: str = "5s"
    host: str = "127.0.0.1"

    config_file = StatePath("prometheus.yml")
    pid_file = StatePath("prometheus.pid")

    def config(self) -> dict[str, object]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "rule_files": [str(DEPLOY / "rules" / "*.yml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]}
                for job, targets in sorted(self.targets.items())
            ],
        }

    def running(self) -> bool:
        return read_pid(self.pid_file) is not None

    def start(self, *, timeout: float = 20.0) -> bool:
        if self.running():
            return False
        binary = installed("prometheus", how="deploy/local/install.sh")
        (self.state_dir / "data").mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        spawn(
            [
                binary,
                f"--config.file={self.config_file}",
                f"--storage.tsdb.path={self.state_dir / 'data'}",
                f"--web.listen-address={self.host}:{self.port}",
                "--storage.tsdb.retention.time=7d",
                "--log.level=warn",
            ],
            log_file=self.state_dir / "prometheus.log",
            pid_file=self.pid_file,
        )
        wait_for_port(self.host, self.port, timeout=timeout, what="prometheus")
        return True

    def stop(self) -> bool:
        return stop_pid(self.pid_file, timeout=15.0)
