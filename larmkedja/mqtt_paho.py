"""paho-mqtt 2.x clients, built one way for every process (MQTT v5, credentials, TLS).

`bare_client` is stock paho (the benchmark's limit). `make_client`, what every service uses,
is `TunedClient`: paho without a reference cycle per received message (docs/bench.md). It
reaches into paho's internals, so paho is pinned by the lock file and
`tests/unit/test_mqtt_paho.py` fails if what it relies on changes.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator
from typing import Any

from paho.mqtt.client import Client, ConnectFlags
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.matcher import MQTTMatcher
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from larmkedja.settings import Settings

log = logging.getLogger(__name__)


def bare_client(
    *,
    client_id: str,
    manual_ack: bool = False,
    v311_persistent: bool = False,
    cls: type[Client] = Client,
) -> Client:
    """An MQTT v5 client; or, with `v311_persistent`, MQTT 3.1.1 with a persistent session
    (clean session off), which paho decodes about twice as fast (see docs/bench.md). Nothing
    else set: the benchmark's limits use it as it is."""
    if v311_persistent:
        return cls(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=False,
            manual_ack=manual_ack,
        )
    return cls(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )


class _FilterlessMatcher(MQTTMatcher):
    """paho's table of per-topic callbacks, without garbage while it is empty.

    paho looks every incoming message up in it (`Client._handle_on_message`), and
    `MQTTMatcher.iter_match` makes a recursive closure each time: a reference cycle of six
    objects per message that only the cyclic garbage collector frees. At 4,000 messages/s
    that filled ingest's youngest generation every two seconds and each collection stopped
    the process for 30-120 ms, the p99 of the alarm latency (docs/bench.md). No larmkedja
    client adds per-topic callbacks, so the lookup is empty; if one ever does, it is paho's.
    """

    def iter_match(self, topic: str) -> Iterator[Callable[..., Any]]:
        root = self._root
        if not root._children and root._content is None:
            return iter(())
        return super().iter_match(topic)  # type: ignore[no-untyped-call, no-any-return]


class TunedClient(Client):
    """paho's client without garbage per received message (see `_FilterlessMatcher`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_message_filtered = _FilterlessMatcher()  # type: ignore[no-untyped-call]


def make_client(
    *,
    settings: Settings,
    client_id: str,
    manual_ack: bool = False,
    v311_persistent: bool = False,
    cls: type[TunedClient] = TunedClient,
) -> Client:
    """A service's client: a `TunedClient` (or the consumer of `mqtt_fast_paho`) with the
    settings' credentials and TLS, no queueing inside paho, and a quick reconnect."""
    client = bare_client(
        client_id=client_id,
        manual_ack=manual_ack,
        v311_persistent=v311_persistent,
        cls=cls,
    )
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    if settings.mqtt_tls_ca:
        client.tls_set(ca_certs=settings.mqtt_tls_ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return client


OnConnected = Callable[[Client, ConnectFlags], None]
ConnectCallback = Callable[[Client, Any, ConnectFlags, ReasonCode, "Properties | None"], None]


def on_connect(*, who: str, connected: OnConnected) -> ConnectCallback:
    """paho's `on_connect` for a service: a refusal is logged (bad credentials, a client id
    the ACL does not allow), an accepted connection calls `connected`."""

    def callback(
        client: Client,
        userdata: Any,
        flags: ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the %s connection: %s", who, reason)
            return
        connected(client, flags)

    return callback


def connect_properties(
    *, session_expiry_s: int = 0, receive_maximum: int | None = None
) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    return props
