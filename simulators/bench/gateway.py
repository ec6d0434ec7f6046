"""The gateway under load: SIA DC-09 panels on TCP, each waiting for its ACK before the next
block (as a panel does), through the gateway process, the broker and ingest into the database.

The figure is device messages acknowledged per second (each ACK only after the broker's
PUBACK) with the ACK latency a panel sees; beside it, the limit of the same run: a bare paho
QoS 1 publisher in this process, which is what the gateway's own publishing costs at best."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devstack.procs import free_port, port_open
from gateway import add_sender, dc09_sender_block
from larmkedja.settings import Settings
from simulators.bench.infra import BenchInfra, count, cpu_s, larmkedja, rss_mb, stop, wait_for
from simulators.bench.load import heartbeats, publish_all


@dataclass
class GatewayRun:
    messages: int
    seconds: float
    ack_ms: list[float] = field(default_factory=list)
    stored: int = 0
    cpu_s: float = 0.0
    rss_mb: tuple[float, float] = (0.0, 0.0)
    publisher_limit_msg_s: float = 0.0

    def report(self) -> dict[str, Any]:
        ordered = sorted(self.ack_ms)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

        return {
            "messages": self.messages,
            "seconds": self.seconds,
            "acked_per_s": self.messages / self.seconds,
            "ack_ms": {
                "p50": statistics.median(ordered),
                "p99": pct(0.99),
                "max": ordered[-1],
            },
            "stored": self.stored,
            "lost": self.messages - self.stored,
            "cpu_ms_per_1000": self.cpu_s / self.messages * 1e6,
            "rss_mb": {"start": self.rss_mb[0], "end": self.rss_mb[1]},
            "paho_publisher_limit_msg_s": self.publisher_limit_msg_s,
        }


def block(account: str, seq: int) -> bytes:
    return dc09_sender_block(
        account=account, seq=seq, data=f"#{account}|NRP{seq:04d}", now=datetime.now(UTC)
    )


async def _panel(host: str, port: int, account: str, n: int, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for seq in range(1, n + 1):
            started = time.perf_counter()
            writer.write(block(account, seq))
            answer = await reader.readuntil(b"\r")
            if b'"ACK"' not in answer:
                raise RuntimeError(f"panel {account} got {answer!r}")
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        writer.close()


async def _panels(host: str, port: int, panels: int, per_panel: int) -> list[float]:
    latencies: list[float] = []
    accounts = [f"B{i:04d}" for i in range(panels)]
    await asyncio.gather(*(_panel(host, port, a, per_panel, latencies) for a in accounts))
    return latencies


def gateway_load(infra: BenchInfra, *, panels: int = 50, per_panel: int = 400) -> GatewayRun:
    url = infra.database("bench_gateway")
    settings = Settings(database_url=url)
    for i in range(panels):  # plain, as the figures before issue 18 were (no AES per block)
        add_sender(settings, protocol="sia-dc09", sender_id=f"B{i:04d}", site="bench",
                  device_id=f"panel-{i:04d}", plain=True)  # fmt: skip
    port = free_port()
    env = infra.env(
        url,
        LARM_GATEWAY_DC09_PORT=str(port),
        LARM_GATEWAY_SCAIP_PORT="0",
        LARM_GATEWAY_SOS_ACCESS_PORT="0",
        LARM_GATEWAY_METRICS_PORT="0",
        LARM_INGEST_INSTANCE="gw",
        LARM_INGEST_SHARE_GROUP="gw",
        LARM_INGEST_SESSION_EXPIRY_S="1",  # gone after the run: it must not queue later loads
        LARM_GATEWAY_SECRET_KEY=secrets.token_urlsafe(48),  # in the environment, not argv
        # Every panel connects from this one address.
        LARM_GATEWAY_MAX_CONNECTIONS_PER_SOURCE=str(panels + 10),
    )
    ingest = larmkedja(["ingest"], env, infra.root / "gateway-ingest.log")
    gateway = larmkedja(["gateway"], env, infra.root / "gateway.log")
    try:
        if not wait_for(lambda: port_open("127.0.0.1", port), timeout=30):
            raise RuntimeError("the gateway did not start (see gateway.log)")
        time.sleep(1.0)  # its broker connection
        rss_start, cpu_start = rss_mb(gateway.pid), cpu_s(gateway.pid)
        started = time.perf_counter()
        latencies = asyncio.run(_panels("127.0.0.1", port, panels, per_panel))
        seconds = time.perf_counter() - started
        run = GatewayRun(messages=len(latencies), seconds=seconds, ack_ms=latencies)
        run.cpu_s = cpu_s(gateway.pid) - cpu_start
        run.rss_mb = (rss_start, rss_mb(gateway.pid))
        sql = "SELECT count(*) FROM events"
        wait_for(lambda: count(url, sql) >= run.messages, timeout=60, every=0.5)
        run.stored = count(url, sql)
    finally:
        stop(gateway)
        stop(ingest)
    sent, publish_s = publish_all(
        "127.0.0.1", infra.broker.port, heartbeats(run.messages, devices=panels, site="limit")
    )
    run.publisher_limit_msg_s = sent / publish_s
    return run
