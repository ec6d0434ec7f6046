"""The gateway's shutdown with messages in hand: a device message being handled is finished (or
given up after the shutdown time), its answer is not written to a closed socket, its dead
letter is kept or given up, and no task is left pending when the loop closes (a CI run once
logged `Task was destroyed but it is pending` and an AttributeError from a datagram answered
after its socket had closed). Loopback sockets and a receiver of the test's own."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from gateway.credentials import ServerKey
from gateway.errors import ProtocolError
from gateway.limits import Slots, TokenBuckets
from gateway.metrics import GatewayMetrics
from gateway.model import Protocol, Refusal
from gateway.servers import DatagramServer, StreamServer, Timeouts
from gateway.service import Gateway

ANSWER = b"ACK\n"


class HeldReceiver:
    """Answers a line once the test lets it (`release`); counts what it finished."""

    protocol = Protocol.SIA_DC09
    one_shot = False

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.released = asyncio.Event()
        self.finished = 0
        self.cancelled = 0

    def take(self, buffer: bytearray) -> bytes | None:
        end = buffer.find(b"\n")
        if end < 0:
            return None
        message = bytes(buffer[: end + 1])
        del buffer[: end + 1]
        return message

    def framing_error(self, exc: ProtocolError, source: str) -> bytes | None:
        return None

    async def handle(self, message: bytes, source: str) -> bytes | None:
        self.entered.set()
        try:
            await self.released.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return ANSWER


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What the loop's exception handler is given meanwhile (none is expected)."""
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: errors.append(context))
    yield errors
    loop.set_exception_handler(None)


def _metrics() -> GatewayMetrics:
    return GatewayMetrics(registry=CollectorRegistry())


async def _datagram_server(receiver: HeldReceiver) -> tuple[DatagramServer, int]:
    server = await DatagramServer.start(
        receiver=receiver,
        metrics=_metrics(),
        slots=Slots(total=10, per_source=10),
        host="127.0.0.1",
        port=0,
    )
    assert server.transport is not None
    port: int = server.transport.get_extra_info("sockname")[1]
    return server, port


async def test_a_datagram_in_hand_at_shutdown_is_finished_and_its_answer_not_sent(
    loop_errors: list[dict[str, Any]],
) -> None:
    receiver = HeldReceiver()
    server, port = await _datagram_server(receiver)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as device:
        device.sendto(b"alarm\n", ("127.0.0.1", port))
        await asyncio.wait_for(receiver.entered.wait(), 5)
        shutting = asyncio.create_task(server.shut(timeout_s=5))
        await asyncio.sleep(0.05)  # the socket is closed, and gone, while the message is in hand
        receiver.released.set()
        await asyncio.wait_for(shutting, 5)
    assert receiver.finished == 1  # stored and published, not cut short
    assert not server._tasks
    assert loop_errors == []  # no answer written to the closed socket


async def test_a_datagram_that_does_not_finish_in_the_shutdown_time_is_given_up() -> None:
    receiver = HeldReceiver()
    server, port = await _datagram_server(receiver)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as device:
        device.sendto(b"alarm\n", ("127.0.0.1", port))
        await asyncio.wait_for(receiver.entered.wait(), 5)
        await asyncio.wait_for(server.shut(timeout_s=0.1), 2)
    assert receiver.cancelled == 1
    assert not server._tasks
    assert server.slots.used == 0


async def test_a_connection_answering_at_shutdown_gets_its_answer_and_then_is_closed(
    loop_errors: list[dict[str, Any]],
) -> None:
    receiver = HeldReceiver()
    stream = StreamServer(
        receiver=receiver,
        metrics=_metrics(),
        timeouts=Timeouts(),
        slots=Slots(total=10, per_source=10),
    )
    server = await stream.start("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"alarm\n")
    await asyncio.wait_for(receiver.entered.wait(), 5)
    server.close()
    shutting = asyncio.create_task(stream.shut(timeout_s=5))
    await asyncio.sleep(0.05)
    assert not shutting.done()  # it waits for the answer
    receiver.released.set()
    await asyncio.wait_for(shutting, 5)
    assert await asyncio.wait_for(reader.read(), 5) == ANSWER  # then the end
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""
    for w in (writer, idle_writer):
        w.close()
    assert not stream.connections
    assert stream.slots.used == 0
    assert loop_errors == []


class _StuckRegistry:
    async def dead_letter(self, letter: object) -> None:
        await asyncio.Event().wait()  # the database does not answer


async def test_a_dead_letter_not_kept_within_the_shutdown_time_is_given_up() -> None:
    gateway = Gateway(
        registry=cast(Any, _StuckRegistry()),
        publisher=cast(Any, None),
        metrics=_metrics(),
        key=ServerKey.of("a test server key, 32 characters or more"),
        dead_letters=TokenBuckets(per_minute=10, total_per_minute=100),
    )
    gateway.refuse(
        Protocol.SIA_DC09,
        Refusal.UNKNOWN_SENDER,
        source="127.0.0.1",
        sender_id="9999",
        detail="unknown",
        head=b"x",
    )
    assert len(gateway._background) == 1
    await asyncio.wait_for(gateway.drain(timeout_s=0.1), 2)
    assert not gateway._background  # cancelled and ended: nothing pending when the loop closes
