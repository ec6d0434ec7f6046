"""The QoS 1 publish path of a client that publishes much and subscribes to nothing (the
gateway): paho with its publish and its reading of PUBACKs replaced.

paho stays in charge of the connection (CONNECT, keepalive, reconnect, TLS, DISCONNECT) and of
every packet but PUBLISH out and PUBACK in. What changes (docs/bench.md says what it measured):

- `queue_publish` encodes the PUBLISH (`larmkedja.mqtt_wire.encode_publish`) and `flush` sends
  every one queued since the last flush in one write, straight to the socket when paho has
  nothing of its own waiting to go (else behind it, in paho's queue). Stock paho builds an
  `MQTTMessage`, an `MQTTMessageInfo` and a lock's worth of bookkeeping per publish, wakes its
  own socket pair and writes each packet with a `send` of its own; with paho on an event loop
  it also registers and unregisters the socket for writing around every publish.
- PUBACKs are read as `mqtt_fast_paho` reads a consumer's publishes: one `recv` for all that
  is there, each PUBACK's packet id and reason code decoded inline (`decode_puback`) and given
  to `on_puback` (no `ReasonCode`, no `Properties`, no scan of paho's in-flight messages).
- At most the broker's Receive Maximum (CONNACK, MQTT v5) are in flight; more wait here, in
  order, and go out as PUBACKs come in (paho held a fixed 20 and scanned every message it had
  on each PUBACK to find the next).

Nothing is resent after a reconnect (paho's queue of messages is not used): whoever waits for
a PUBACK is told the connection is gone (`on_disconnect`) and its device retries. It reaches
into paho internals (`_sock_send`, `_out_packet`, `_packet_queue`, `_mid_generate`,
`_handle_connack`, `_last_msg_out`), so `tests/unit/test_mqtt_publish_paho.py` fails if they
change.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from paho.mqtt import _packet
from paho.mqtt.enums import MQTTErrorCode

from larmkedja.mqtt_fast_paho import FastReader
from larmkedja.mqtt_wire import PUBACK, PUBLISH_QOS1, Frame, decode_puback, encode_publish

OnPuback = Callable[[int, int], None]  # (packet id, reason code)
NO_LIMIT = 65_535  # MQTT v5: a CONNACK without Receive Maximum allows this many
_OK = MQTTErrorCode.MQTT_ERR_SUCCESS


class FastPublisher(FastReader):
    """A `TunedClient` whose QoS 1 publishes go out many to a write; `on_puback` hears each
    PUBACK. Used from one thread (the gateway's event loop)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_puback: OnPuback | None = None
        self.window = NO_LIMIT  # the broker's Receive Maximum
        self._pending: list[bytes] = []  # encoded, in flight, not yet written
        self._held: deque[bytes] = deque()  # encoded, beyond the window
        self._inflight = 0

    def queue_publish(self, topic: bytes, payload: bytes) -> int:
        """Queue a QoS 1 PUBLISH (written by the next `flush`); its packet id."""
        mid = self._mid_generate()
        packet = encode_publish(topic, payload, mid, v5=self._v5)
        if self._inflight < self.window:
            self._inflight += 1
            self._pending.append(packet)
        else:
            self._held.append(packet)
        return mid

    def flush(self) -> None:
        """Write every queued PUBLISH: in one `send` if the socket takes it (the usual case),
        what it does not take through paho's queue, which writes it when the socket can."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if self._sock is None:
            return  # gone: whoever waits is told by on_disconnect
        sent = 0
        if not self._out_packet:  # nothing of paho's before it: straight to the socket
            try:
                sent = self._sock_send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # paho's own write meets the error again and handles the loss
            if sent:
                with self._msgtime_mutex:
                    self._last_msg_out = time.monotonic()
        if sent < len(data):
            self._packet_queue(PUBLISH_QOS1, data[sent:], 0, 1)

    def _packet_read(self) -> MQTTErrorCode:
        return self._read_frames()

    def _fast(self, buf: bytearray, frame: Frame) -> bool:
        if frame.header != PUBACK:
            return False
        mid, reason = decode_puback(buf, frame, v5=self._v5)
        if self._held:
            self._pending.append(self._held.popleft())  # its slot goes to the next in line
        elif self._inflight > 0:
            self._inflight -= 1
        if self.on_puback is not None:
            self.on_puback(mid, reason)
        return True

    def _pass_done(self) -> None:
        self.flush()  # what PUBACKs let out of the window

    def _handle_connack(self) -> MQTTErrorCode:
        """A new connection: nothing of the old one in flight; the broker's Receive Maximum."""
        self._pending.clear()
        self._held.clear()
        self._inflight = 0
        self.window = NO_LIMIT
        if self._v5:
            try:
                props = _packet.decode_connack(
                    self._in_packet["command"], self._in_packet["packet"], self._protocol
                ).properties
            except Exception:  # paho's own handler refuses it just after
                props = None
            self.window = int(getattr(props, "ReceiveMaximum", NO_LIMIT))
        rc: MQTTErrorCode = super()._handle_connack()
        return rc
