"""`larmkedja gateway`: the protocol receivers, the registry, the MQTT publisher, /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server
from psycopg_pool import AsyncConnectionPool

from gateway.credentials import ServerKey
from gateway.dc09_receiver import Dc09Receiver
from gateway.errors import ConfigurationError
from gateway.limits import Slots, TokenBuckets
from gateway.metrics import GatewayMetrics
from gateway.publish_paho import EventPublisher, Paths, Publisher, publisher_client
from gateway.registry_psycopg import Registry
from gateway.scaip_receiver import ScaipReceiver
from gateway.servers import DatagramServer, Receiver, StreamServer, Timeouts
from gateway.service import Gateway
from gateway.sos_receiver import SosAccessReceiver
from larmkedja.db_connect import async_pool
from larmkedja.settings import Settings

log = logging.getLogger(__name__)
SHUTDOWN_S = 5.0  # for the messages in hand at shutdown, then for their dead letters


@dataclass
class Running:
    """What a started gateway holds open; `close` releases it all."""

    gateway: Gateway
    pool: AsyncConnectionPool
    servers: list[tuple[asyncio.Server, StreamServer]] = field(default_factory=list)
    datagrams: list[DatagramServer] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)

    async def close(self, *, timeout_s: float = SHUTDOWN_S) -> None:
        """No new connection or datagram; those in hand answered (or given up after
        `timeout_s`), their dead letters kept, and nothing left running."""
        for server, _ in self.servers:
            server.close()
        await asyncio.gather(
            *(stream.shut(timeout_s=timeout_s) for _, stream in self.servers),
            *(datagrams.shut(timeout_s=timeout_s) for datagrams in self.datagrams),
        )
        for server, _ in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), timeout_s)
        await self.gateway.drain(timeout_s=timeout_s)
        self.gateway.publisher.stop()
        await self.pool.close()


def receivers(settings: Settings, gateway: Gateway) -> list[tuple[Receiver, int, bool]]:
    """(receiver, port, also UDP) for each receiver switched on."""
    found: list[tuple[Receiver, int, bool]] = []
    if settings.gateway_scaip_port:
        scaip = ScaipReceiver(
            gateway=gateway,
            heartbeat_s=settings.gateway_heartbeat_s,
            nonce_s=settings.gateway_nonce_s,
        )
        found.append((scaip, settings.gateway_scaip_port, True))
    if settings.gateway_sos_access_port:
        sos = SosAccessReceiver(gateway=gateway, ping_min_s=settings.gateway_ping_min_s)
        found.append((sos, settings.gateway_sos_access_port, False))
    if settings.gateway_dc09_port:
        found.append((Dc09Receiver(gateway=gateway), settings.gateway_dc09_port, True))
    return found


def server_key(settings: Settings) -> ServerKey:
    if settings.gateway_secret_key is None:
        raise ConfigurationError(
            "LARM_GATEWAY_SECRET_KEY is not set: the gateway checks SOS Access passwords and "
            "signs SIP digest nonces with it (docs/protocols.md)"
        )
    return ServerKey.of(settings.gateway_secret_key.get_secret_value())


async def _listen(
    settings: Settings, running: Running, metrics: GatewayMetrics, receiver: Receiver, port: int
) -> int:
    """The receiver's TCP server (and its port), each with caps of its own."""
    timeouts = Timeouts(
        message_s=settings.gateway_message_deadline_s,
        idle_s=settings.gateway_idle_s,
        lifetime_s=settings.gateway_connection_lifetime_s,
    )
    slots = Slots(
        total=settings.gateway_max_connections,
        per_source=settings.gateway_max_connections_per_source,
    )
    stream = StreamServer(receiver=receiver, metrics=metrics, timeouts=timeouts, slots=slots)
    server = await stream.start(settings.gateway_host, port)
    running.servers.append((server, stream))
    bound: int = server.sockets[0].getsockname()[1]
    running.ports[receiver.protocol.value] = bound
    return bound


def event_publisher(settings: Settings) -> EventPublisher:
    """One broker, or every receiving path of LARM_MQTT_PATHS (each event to each)."""
    started = []
    for host, port in settings.broker_paths():
        client_id = f"larmkedja-gateway-{settings.gateway_instance}"
        publisher = Publisher(
            client=publisher_client(settings=settings, client_id=client_id),
            timeout_s=settings.gateway_publish_timeout_s,
        )
        publisher.start(host=host, port=port, keepalive_s=settings.mqtt_keepalive_s)
        started.append(publisher)
    return started[0] if len(started) == 1 else Paths(started)


async def start(settings: Settings, *, metrics: GatewayMetrics) -> Running:
    key = server_key(settings)
    pool = async_pool(
        settings.database_url, deadline_s=settings.db_deadline_s, min_size=1, max_size=4
    )
    await pool.open(wait=False)
    publisher = event_publisher(settings)
    registry = Registry(pool=pool, cache_s=settings.gateway_registry_cache_s)
    dead_letters = TokenBuckets(
        per_minute=settings.gateway_dead_letters_per_minute,
        total_per_minute=settings.gateway_dead_letters_total_per_minute,
    )
    gateway = Gateway(
        registry=registry, publisher=publisher, metrics=metrics, key=key, dead_letters=dead_letters
    )
    running = Running(gateway=gateway, pool=pool)
    host = settings.gateway_host
    for receiver, port, udp in receivers(settings, gateway):
        bound = await _listen(settings, running, metrics, receiver, port)
        if udp:
            slots = Slots(
                total=settings.gateway_max_datagrams,
                per_source=settings.gateway_max_datagrams_per_source,
            )
            datagrams = await DatagramServer.start(
                receiver=receiver, metrics=metrics, slots=slots, host=host, port=bound
            )
            running.datagrams.append(datagrams)
        log.info("gateway: %s on %s:%s%s", receiver.protocol.value, host, bound, " (+UDP)" * udp)
    return running


async def serve(settings: Settings) -> None:
    registry = CollectorRegistry()
    if settings.gateway_metrics_port:
        start_http_server(
            settings.gateway_metrics_port, addr=settings.gateway_metrics_host, registry=registry
        )
    metrics = GatewayMetrics(registry=registry)
    running = await start(settings, metrics=metrics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        while not stop.is_set():
            metrics.broker_connected.set(1 if running.gateway.publisher.connected else 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        await running.close()
    log.info("gateway stopped")
