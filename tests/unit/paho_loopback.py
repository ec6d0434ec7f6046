"""A paho client "connected" to a plain socket over loopback TCP: no broker, no CONNECT; the
test plays the broker on `peer`, byte for byte."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from paho.mqtt.client import Client
from paho.mqtt.enums import _ConnectionState

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
