"""The protocol gateway: SCAIP, SOS Access v4 and SIA DC-09 senders → contract events on MQTT.
What other packages may use is named here (the entry points serve it with `gateway.app`)."""

from gateway.admin import add as add_sender
from gateway.admin import listing as list_senders
from gateway.admin import revoke as revoke_sender
from gateway.admin import upgrade_passwords as upgrade_sender_passwords
from gateway.sia_dc09 import sender_block as dc09_sender_block

__all__ = [
    "add_sender",
    "dc09_sender_block",
    "list_senders",
    "revoke_sender",
    "upgrade_sender_passwords",
]
