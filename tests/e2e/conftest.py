"""Fixtures of the end-to-end tests: a whole local stack of their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import Stack


@pytest.fixture
def stack(state_dir: Path) -> Iterator[Stack]:
    """A `make up` stack under its own state directory, stopped after the test."""
    s = Stack(state_dir=state_dir / f"stack-{uuid.uuid4().hex[:6]}")
    try:
        yield s
    finally:
        s.down()
