"""Fixtures of the end-to-end tests: a whole local stack of their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from devstack.stack import Stack
from tests.e2e.pages import CHROMIUM, FLAGS


@pytest.fixture
def stack(state_dir: Path) -> Iterator[Stack]:
    """A `make up` stack under its own state directory, stopped after the test."""
    s = Stack(state_dir=state_dir / f"stack-{uuid.uuid4().hex[:6]}")
    try:
        yield s
    finally:
        s.down()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for the pages' tests."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (deploy/local/install.sh installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()
