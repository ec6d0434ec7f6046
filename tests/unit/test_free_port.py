"""Ports for the dev stack's servers: never one an outgoing connection may hold."""

from __future__ import annotations

import socket

from devstack.procs import _ephemeral_low, free_port


def test_ports_to_listen_on_are_distinct_free_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(100)]
    assert len(set(ports)) == len(ports)
    assert all(p < _ephemeral_low() for p in ports)
    for port in ports[:5]:  # nobody listens there: a server can bind it
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_never_given() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        held = taken.getsockname()[1]
        assert all(free_port() != held for _ in range(200))
