"""A paho client "connected" to a plain socket over loopback TCP: no broker, no CONNECT; the
test plays the broker on `peer`, byte for byte. And the check that paho still has the internals
our fast paths replace (paho is pinned; an upgrade that moves them fails there first)."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import paho.mqtt
from paho.mqtt.client import Client
from paho.mqtt.enums import _ConnectionState

from larmkedja.mqtt_paho import bare_client

C = TypeVar("C", bound=Client)


@contextmanager
def connected(client: C) -> Iterator[tuple[C, socket.socket]]:
    listener = socket.create_server(("127.0.0.1", 0))
    ours = socket.create_connection(listener.getsockname())
    peer, _ = listener.accept()
    listener.close()
    ours.setblocking(False)
    client._sock = ours
    client._state = _ConnectionState.MQTT_CS_CONNECTED
    try:
        yield client, peer
    finally:
        peer.close()
        if client._sock is not None:
            client._sock.close()


def assert_paho_has(*, methods: Iterable[str], attributes: Iterable[str]) -> Client:
    """paho is the pinned version and a fresh client has these; returns that client."""
    assert paho.mqtt.__version__ == "2.2.0"
    client = bare_client(client_id="t")
    for name in methods:
        assert callable(getattr(client, name)), name
    for name in attributes:
        assert hasattr(client, name), name
    return client
