"""The browser tests' common steps: Debian's Chromium as this machine needs it, signing in to a
page, and screenshots under .state/screenshots/."""

from __future__ import annotations

import shutil

from playwright.sync_api import Page, expect

from tests.conftest import ROOT

SHOTS = ROOT / ".state" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags this machine needs (closed network, root, no GPU).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def login(page: Page, url: str, path: str, secret: str) -> None:
    page.goto(f"{url}/ui/{path}")
    page.fill("#login input", secret)
    page.click("#login button[type=submit]")
    expect(page.locator("#main")).to_be_visible()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")
