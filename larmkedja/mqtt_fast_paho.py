"""The receive path of a consumer (ingest): paho with its read replaced (`FastReader`, which
the gateway's publisher reads its PUBACKs with too: `mqtt_publish_paho`).

paho stays in charge of the connection (CONNECT, keepalive, reconnect, SUBSCRIBE, TLS) and of
every packet but one. What changes (docs/bench.md says why and what it measured):

- one `recv` of up to 256 KiB per readable socket, and every complete packet in the buffer
  handled in that pass (stock paho: three or four `recv` calls per packet, one packet per
  `select`);
- a QoS 1 PUBLISH is decoded inline (`larmkedja.mqtt_wire`), its v5 properties skipped, and
  the pass's publishes handed over as one list to `on_publishes` (no `MQTTMessage`, no
  per-message `Properties`, no per-message lock); any other packet, in order, goes to paho's
  own `_packet_handle` exactly as paho would have read it;
- `ack_many` sends a batch's PUBACKs as one write;
- back-pressure: while the consumer holds as much as it may (`full`), the socket is not read,
  so TCP stops the broker and the broker queues; Mosquitto 2.0 does not hold to the receive
  maximum when it sends a session's backlog, so without this the backlog ends up in our
  memory;
- a deliberate disconnect reads until the broker closes before closing the socket: closing
  with unread input makes the kernel reset the connection, and Mosquitto then drops the
  PUBACKs it had not yet read, so a clean stop would have every acknowledged message
  delivered again.

It reaches into paho internals (`_packet_read`, `_in_packet`, `_packet_handle`,
`_packet_queue`, `_sock_close`, `_state`): paho is pinned by the lock file and
`tests/unit/test_mqtt_fast_paho.py` fails if they change.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from paho.mqtt.client import MQTT_LOG_ERR
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion, _ConnectionState

from larmkedja.mqtt_paho import TunedClient
from larmkedja.mqtt_wire import (
    PUBACK,
    PUBLISH,
    Frame,
    Publish,
    WireError,
    decode_publish,
    decode_short_publishes,
    next_frame,
)

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
PAUSE_S = 0.01  # while the consumer is full, how long one pass of paho's loop waits for room
DRAIN_S = 2.0  # at most this long reading after DISCONNECT before the socket is closed
_PUBACK = struct.Struct("!BBH")
_OK = MQTTErrorCode.MQTT_ERR_SUCCESS

OnPublishes = Callable[[list[Publish]], None]


def _idle_packet() -> Any:
    return {
        "command": 0,
        "have_remaining": 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": 0,
        "packet": bytearray(b""),
        "to_process": 0,
        "pos": 0,
    }


class FastReader(TunedClient):
    """paho's reader replaced: one `recv` per readable socket, every whole packet in it handled
    in that pass; `_fast` takes the packets a subclass decodes itself, paho's own handler the
    rest, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()
        self._v5 = self._protocol == MQTTProtocolVersion.MQTTv5  # how its packets are decoded

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf = bytearray()  # what the old connection left is not this one's
        return super().reconnect()

    def _fast(self, buf: bytearray, frame: Frame) -> bool:
        """Take this packet inline (True), or leave it to paho (False)."""
        raise NotImplementedError

    def _pass_done(self) -> None:
        """Before a packet goes to paho, and at the end of a pass: hand over what `_fast` took."""

    def _read_frames(self) -> MQTTErrorCode:
        try:
            data = self._sock_recv(READ_SIZE)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError as err:
            self._easy_log(MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        buf = self._rbuf
        buf += data
        try:
            rc, used = self._handle_frames(buf)
        except WireError as err:
            self._easy_log(MQTT_LOG_ERR, "malformed packet from the broker: %s", err)
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        del buf[:used]
        return rc

    def _fast_run(self, buf: bytearray, pos: int) -> int:
        """Take a run of packets from `pos` at once; where the first one not taken starts."""
        return pos

    def _handle_frames(self, buf: bytearray) -> tuple[MQTTErrorCode, int]:
        pos = 0
        while (frame := next_frame(buf, pos := self._fast_run(buf, pos))) is not None:
            pos = frame.end
            if self._fast(buf, frame):
                continue
            self._pass_done()  # in order: a CONNACK or DISCONNECT after them sees them handled
            rc = self._paho_handles(buf, frame)
            if rc != _OK:
                return rc, pos
        self._pass_done()
        return _OK, pos

    def _paho_handles(self, buf: bytearray, frame: Frame) -> MQTTErrorCode:
        """One packet through paho's own handler, as paho's reader would have left it."""
        packet = _idle_packet()
        packet.update(
            command=frame.header,
            have_remaining=1,
            remaining_length=frame.end - frame.start,
            packet=bytearray(buf[frame.start : frame.end]),
        )
        self._in_packet = packet
        try:
            rc: MQTTErrorCode = self._packet_handle()
        except Exception as err:  # paho's MalformedPacket, or a struct error on a short one
            self._easy_log(MQTT_LOG_ERR, "malformed packet from the broker: %s", err)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = _idle_packet()
        return rc


class FastConsumer(FastReader):
    """A `TunedClient` whose QoS 1 publishes arrive in lists at `on_publishes`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_publishes: OnPublishes | None = None
        self._batch: list[Publish] = []
        # Back-pressure: while `full()` says so, the socket is not read (TCP holds the broker,
        # which queues); `room` is set when the consumer has made room again.
        self.full: Callable[[], bool] = lambda: False
        self.room = threading.Event()

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK for each packet id (QoS 1), all in one write."""
        if mids:
            packet = b"".join([_PUBACK.pack(PUBACK, 2, mid) for mid in mids])
            self._packet_queue(PUBACK, packet, 0, 0)

    def _packet_read(self) -> MQTTErrorCode:
        if self.on_publishes is None:
            return super()._packet_read()
        if self.full():
            self.room.clear()
            if self.full():  # not read now; paho's loop calls again at once, so wait a little
                self.room.wait(PAUSE_S)
                return MQTTErrorCode.MQTT_ERR_AGAIN
        self._batch = []
        return self._read_frames()

    def _fast_run(self, buf: bytearray, pos: int) -> int:
        """Each run of short QoS 1 publishes (a consumer's every packet under load) in one step
        (`decode_short_publishes`)."""
        return decode_short_publishes(buf, pos, v5=self._v5, into=self._batch)

    def _fast(self, buf: bytearray, frame: Frame) -> bool:
        if frame.header & 0xF0 != PUBLISH:
            return False
        publish = decode_publish(buf, frame, v5=self._v5)
        if publish is None:
            return False
        self._batch.append(publish)
        return True

    def _pass_done(self) -> None:
        if self._batch and self.on_publishes is not None:
            batch, self._batch = self._batch, []
            self.on_publishes(batch)

    def _sock_close(self) -> None:
        sock = self._sock
        if sock is not None and self._state == _ConnectionState.MQTT_CS_DISCONNECTING:
            _drain(sock)
        super()._sock_close()


def _drain(sock: Any) -> None:
    """After our DISCONNECT: say we send nothing more and read until the broker closes (or
    DRAIN_S), so that the close finds no unread input and sends FIN, not RST."""
    deadline = time.monotonic() + DRAIN_S
    try:
        sock.setblocking(True)
        if isinstance(sock, socket.socket) and not hasattr(sock, "cipher"):
            sock.shutdown(socket.SHUT_WR)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(READ_SIZE):
                return
    except OSError:
        return  # already gone: nothing left to protect
