"""What a dead letter keeps of a refused message: its head with the parts that must not be
stored (names, a caller's number, a password) masked. Pure."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable


def redactor(pattern: bytes, mask: bytes) -> Callable[[bytes], bytes]:
    """A function that replaces every match of `pattern` in a message by `mask`."""
    return functools.partial(re.compile(pattern).sub, mask)
