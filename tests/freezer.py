"""A TCP proxy that can freeze: a hung host without stopping a server other tests share.

Frozen, it accepts connections and takes bytes (as the kernel of a stopped host does: TCP
stays up, keepalives are answered) but passes nothing on and answers nothing. Thawed, it
forwards again, what was held included. `cut()` closes every connection it carries (a peer
that died and came back)."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class _Pair:
    client: socket.socket
    server: socket.socket
    held: dict[socket.socket, bytearray] = field(default_factory=dict)


class FreezingProxy:
    def __init__(self, *, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._frozen = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._cuts: list[threading.Event] = []
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="freezing-proxy", daemon=True)
        self._thread.start()

    def freeze(self) -> None:
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    def cut(self) -> None:
        """Close every connection now (done by the proxy's own thread)."""
        done = threading.Event()
        self._cuts.append(done)
        done.wait(timeout=5)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._cut_all()
        self._listener.close()
        self._sel.close()

    def _cut_all(self) -> None:
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            self._drop(pair)

    def _run(self) -> None:
        while not self._stop.is_set():
            while self._cuts:
                self._cut_all()
                self._cuts.pop().set()
            for key, _ in self._sel.select(timeout=0.05):
                if key.data is None:
                    self._accept()
                else:
                    self._pump(key.data, key.fileobj)  # type: ignore[arg-type]
            if not self._frozen.is_set():
                self._release_held()

    def _accept(self) -> None:
        client, _ = self._listener.accept()
        try:
            server = socket.create_connection(self._target, timeout=5)
        except OSError:
            client.close()
            return
        pair = _Pair(client=client, server=server)
        with self._lock:
            self._pairs.append(pair)
        for sock in (client, server):
            sock.setblocking(False)
            pair.held[sock] = bytearray()
            self._sel.register(sock, selectors.EVENT_READ, pair)

    def _pump(self, pair: _Pair, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(pair)
            return
        other = pair.server if sock is pair.client else pair.client
        pair.held[other] += data
        if not self._frozen.is_set():
            self._flush(pair, other)

    def _flush(self, pair: _Pair, sock: socket.socket) -> None:
        buf = pair.held.get(sock)
        if not buf:
            return
        try:
            sock.setblocking(True)
            sock.sendall(bytes(buf))
            sock.setblocking(False)
            buf.clear()
        except OSError:
            self._drop(pair)

    def _release_held(self) -> None:
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            for sock in (pair.client, pair.server):
                self._flush(pair, sock)

    def _drop(self, pair: _Pair) -> None:
        for sock in (pair.client, pair.server):
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(sock)
            with contextlib.suppress(OSError):
                sock.close()
        pair.held.clear()
        with self._lock, contextlib.suppress(ValueError):
            self._pairs.remove(pair)
