"""The gateway's typed errors."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every gateway error."""


class ProtocolError(GatewayError):
    """A device message that breaks its protocol; `code` is the protocol's own error."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class RegistryUnavailable(GatewayError):
    """The sender registry cannot be read and nothing about this sender is cached."""


class SenderError(GatewayError):
    """A registry change that cannot be made (bad protocol, id, secret)."""


class ConfigurationError(GatewayError):
    """The gateway cannot start with these settings (e.g. no server key)."""
