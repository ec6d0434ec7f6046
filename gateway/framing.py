"""Whole messages out of a stream buffer, shared by the codecs that read TCP. Pure."""

from __future__ import annotations


def cut(buffer: bytearray, end: int) -> bytes | None:
    """The first `end` bytes, removed from `buffer`; None (and nothing removed) while it holds
    fewer."""
    if len(buffer) < end:
        return None
    message = bytes(buffer[:end])
    del buffer[:end]
    return message
