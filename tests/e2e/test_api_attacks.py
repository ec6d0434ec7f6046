"""The API process attacked from outside: huge bodies, slow bodies, a revoked token's stream.
A real `larmkedja api` process (its RSS is what an attacker would blow up), a real database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.tokens_admin import revoke
from devstack.procs import free_port
from larmkedja.settings import Settings
from tests.conftest import Broker
from tests.helpers import role_url, settings_for, token, wait_until

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Api:
    url: str
    port: int
    pid: int
    settings: Settings

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")


@pytest.fixture
def api(database_url: str, broker: Broker, tmp_path: Path) -> Iterator[Api]:
    port = free_port()
    env = {
        **os.environ,
        "LARM_DATABASE_URL": role_url(database_url, "larm_api"),
        "LARM_MQTT_HOST": broker.host,
        "LARM_MQTT_PORT": str(broker.port),
        "LARM_API_HOST": "127.0.0.1",
        "LARM_API_PORT": str(port),
        "LARM_API_BODY_TIMEOUT_S": "2",
        "LARM_TOKEN_CACHE_S": "1",
    }
    exe = str(Path(sys.executable).with_name("larmkedja"))
    with (tmp_path / "api.log").open("wb") as log:
        proc = subprocess.Popen([exe, "api"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(url), timeout=20, what="api up")
        yield Api(url, port, proc.pid, settings_for(database_url, broker.host, broker.port))
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _raw(port: int, head: bytes, body: Iterator[bytes], *, pause_s: float = 0.0) -> tuple[str, int]:
    """Send a request by hand; returns the status line and how many body bytes got through
    before the server answered and hung up."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        reply = b""
        for chunk in body:
            try:
                reply += sock.recv(65536)
            except BlockingIOError:
                pass
            if reply:
                break
            try:
                sock.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            time.sleep(pause_s)
        sock.settimeout(30)
        while b"\r\n" not in reply:
            more = sock.recv(65536)
            if not more:
                break
            reply += more
    return reply.split(b"\r\n", 1)[0].decode(), sent


def _head(path: str, length: int | None) -> bytes:
    size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{size}\r\n\r\n"
    ).encode()


def _megabytes(n: int, *, chunked: bool) -> Iterator[bytes]:
    block = b"[" + b"1," * (MIB // 2 - 1) + b"1]"
    for _ in range(n):
        yield b"%x\r\n%s\r\n" % (len(block), block) if chunked else block


def test_a_200_mb_body_is_refused_413_before_it_is_read_and_memory_stays_flat(api: Api) -> None:
    start = api.rss_mib()
    path = "/api/v1/alarms/00000000-0000-0000-0000-000000000000/escalate"
    status, sent = _raw(api.port, _head(path, 200 * MIB), _megabytes(200, chunked=False))
    assert " 413 " in status, status
    assert sent < 20 * MIB  # answered at once, from the Content-Length

    # Chunked, so no length to go by; ten at once, unauthenticated.
    def chunked(_: int) -> tuple[str, int]:
        return _raw(api.port, _head(path, None), _megabytes(200, chunked=True))

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(chunked, range(10)))
    assert all(" 413 " in status for status, _ in results), results
    assert all(sent < 20 * MIB for _, sent in results), results
    grown = api.rss_mib() - start
    assert grown < 50, f"RSS grew by {grown:.0f} MiB"
    assert _up(api.url)  # and it still serves


def test_a_body_that_trickles_in_is_cut_off_at_the_deadline(api: Api) -> None:
    path = "/api/v1/alarms/00000000-0000-0000-0000-000000000000/escalate"
    began = time.monotonic()
    status, _ = _raw(api.port, _head(path, 100), iter([b"{"] * 100), pause_s=0.25)
    took = time.monotonic() - began
    assert " 408 " in status, status
    assert took < 6, f"held for {took:.1f} s"
    assert _up(api.url)


def test_a_revoked_tokens_stream_is_closed_within_the_token_cache_time(api: Api) -> None:
    headers = token(api.settings, "operator", name="night-op")
    ws_url = api.url.replace("http://", "ws://") + "/api/v1/stream"
    with connect(ws_url, additional_headers=headers) as ws:
        ws.recv(timeout=5)  # the snapshot
        assert revoke(api.settings, name="night-op") == 1
        revoked = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        assert time.monotonic() - revoked < 1 + 5 + 1  # token_cache_s, one check, a margin
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
