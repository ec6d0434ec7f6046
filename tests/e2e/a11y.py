"""WCAG 2.1 AA in the browser tests: axe-core (bundled by axe-playwright-python) on a page as
the person sees it; any violation fails the test with what and where."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

AXE = Axe()
# The rules Swedish public-sector law asks (EN 301 549 → WCAG 2.1 A and AA), and best practice.
OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}


def assert_accessible(page: Page, what: str) -> None:
    """No axe-core violation on `page` in its current state (`what` names it in the failure)."""
    found: list[dict[str, Any]] = AXE.run(page, options=OPTIONS).response["violations"]
    lines = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in found
    ]
    assert not found, f"axe-core on {what}:\n" + "\n".join(lines)
