"""paho-mqtt 2.x clients, built one way for every process (MQTT v5, credentials, TLS)."""

from __future__ import annotations

import ssl

from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from larmkedja.settings import Settings


def bare_client(
    *, client_id: str, manual_ack: bool = False, v311_persistent: bool = False
) -> Client:
    """An MQTT v5 client; or, with `v311_persistent`, MQTT 3.1.1 with a persistent session
    (clean session off), which paho decodes about twice as fast (see docs/bench.md). Nothing
    else set: the benchmark's limits use it as it is."""
    if v311_persistent:
        return Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=False,
            manual_ack=manual_ack,
        )
    return Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )


def make_client(
    *,
    settings: Settings,
    client_id: str,
    manual_ack: bool = False,
    v311_persistent: bool = False,
) -> Client:
    """A service's client: `bare_client` with the settings' credentials and TLS, no queueing
    inside paho, and a quick reconnect."""
    client = bare_client(
        client_id=client_id, manual_ack=manual_ack, v311_persistent=v311_persistent
    )
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    if settings.mqtt_tls_ca:
        client.tls_set(ca_certs=settings.mqtt_tls_ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return client


def connect_properties(
    *, session_expiry_s: int = 0, receive_maximum: int | None = None
) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    return props
