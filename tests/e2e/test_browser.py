"""The pages in headless Chromium (Debian's) against the real stack; screenshots are saved
under .state/screenshots/."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from api.pages import PAGES, STATIC
from larmkedja.events import Kind
from larmkedja.settings import Settings
from tests.conftest import ROOT, Broker
from tests.e2e.a11y import assert_accessible
from tests.helpers import (
    make_event,
    publish_all,
    running_api,
    running_engine,
    running_ingest,
    scalar,
    settings_for,
    token,
    wait_until,
)

pytestmark = pytest.mark.e2e
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (deploy/local/install.sh installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def stack(database_url: str, broker: Broker) -> Iterator[tuple[Settings, str]]:
    s = settings_for(database_url, broker.host, broker.port)
    with running_ingest(s), running_engine(s), running_api(s) as url:
        yield s, url


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


def test_operator_sees_an_alarm_within_2s_answers_it_and_the_kpi_strip_changes(
    browser: Browser, stack: tuple[Settings, str], broker: Broker
) -> None:
    settings, url = stack
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    login(page, url, "operator", bearer(token(settings, "operator", "op-eva")))
    expect(page.locator("#live")).to_have_class(re.compile(r"\blive\b"))
    expect(page.locator("#kpi-mean")).to_have_text("\u2013")  # no answers yet
    press = make_event("d-0042", Kind.ALARM_FALL)
    started = time.monotonic()
    publish_all(broker.host, broker.port, [(press.topic("solna"), press.to_json())])
    row = page.locator("#queue tr.raised")
    expect(row).to_have_count(1, timeout=2000)
    assert time.monotonic() - started < 2.0
    expect(row).to_contain_text("alarm.fall")
    expect(page.locator("#flash")).to_be_visible()  # the visible cue of a new alarm
    shot(page, "operator-new-alarm")
    assert_accessible(page, "the operator's queue with a new alarm")
    time.sleep(1.2)
    expect(row.locator(".waiting")).not_to_have_text("0:00")  # the timer counts up
    row.locator("button.answer").click()
    expect(page.locator("#queue tr.answered")).to_have_count(1, timeout=2000)
    expect(page.locator("#kpi-mean")).to_contain_text("s (1)", timeout=3000)
    shot(page, "operator-answered")
    page.close()


def test_keyboard_answers_and_escalate_asks_for_a_reason(
    browser: Browser, stack: tuple[Settings, str], broker: Broker
) -> None:
    settings, url = stack
    page = browser.new_page()
    login(page, url, "operator", bearer(token(settings, "operator")))
    press = make_event("d-7", Kind.ALARM_BUTTON)
    publish_all(broker.host, broker.port, [(press.topic("solna"), press.to_json())])
    expect(page.locator("#queue tr.raised")).to_have_count(1, timeout=2000)
    page.keyboard.press("a")
    expect(page.locator("#queue tr.answered")).to_have_count(1, timeout=2000)
    page.keyboard.press("e")
    page.fill("#ask input", "ingen kontakt")
    page.click("#ask button[value=ok]")
    expect(page.locator("#queue tr.escalated")).to_have_count(1, timeout=2000)
    page.close()


def test_patrol_acknowledges_an_escalation_on_a_360px_phone(
    browser: Browser, stack: tuple[Settings, str], broker: Broker, database_url: str
) -> None:
    settings, url = stack
    press = make_event("d-9", Kind.ALARM_FALL)
    publish_all(broker.host, broker.port, [(press.topic("solna"), press.to_json())])
    wait_until(lambda: scalar(database_url, "SELECT count(*) FROM alarms") == 1, timeout=2)
    alarm_id = scalar(database_url, "SELECT alarm_id FROM alarms")
    op = token(settings, "operator")
    httpx.post(
        f"{url}/api/v1/alarms/{alarm_id}/escalate", headers=op, json={"reason": "fallen, no answer"}
    ).raise_for_status()

    phone = browser.new_page(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    login(phone, url, "patrol", bearer(token(settings, "patrol", "natt-2")))
    card = phone.locator(".task")
    expect(card).to_have_count(1, timeout=2000)
    expect(card).to_contain_text("fallen, no answer")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width} px wide on a 360 px screen"
    shot(phone, "patrol-360")
    assert_accessible(phone, "the patrol page on a phone")
    card.locator("button.ack").tap()
    expect(card.locator(".state")).to_have_text("kvitterad", timeout=2000)
    card.locator("button.arrive").tap()
    expect(card.locator(".state")).to_have_text("framme", timeout=2000)
    assert scalar(database_url, "SELECT state FROM escalations") == "arrived"
    shot(phone, "patrol-arrived")
    phone.close()


def test_each_page_enforces_its_role_and_english_is_switchable(
    browser: Browser, stack: tuple[Settings, str]
) -> None:
    settings, url = stack
    page = browser.new_page()
    login_page = page
    login_page.goto(f"{url}/ui/supervisor")
    login_page.fill("#login input", bearer(token(settings, "operator")))
    login_page.click("#login button[type=submit]")
    expect(page.locator("#login-msg")).to_contain_text("operator")
    expect(page.locator("#main")).to_be_hidden()
    assert_accessible(page, "the sign-in form refusing a role")
    page.click("#lang")
    expect(page.locator("#login h1")).to_have_text("Sign in")
    assert_accessible(page, "the sign-in form in English")
    page.goto(f"{url}/ui/")
    assert_accessible(page, "the index page")
    page.close()


def test_supervisor_sees_answer_time_by_hour_and_last_nights_report(
    browser: Browser, stack: tuple[Settings, str], database_url: str
) -> None:
    import psycopg

    settings, url = stack
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        for hours_ago, wait in [(1, 20), (1, 30), (5, 90), (20, 10)]:
            answered = now - timedelta(hours=hours_ago)
            conn.execute(
                "INSERT INTO alarms (site, device_id, kind, priority, state, raised_at,"
                " last_event_at, answered_at, answered_by)"
                " VALUES ('solna', %s, 'alarm.button', 1, 'answered', %s, %s, %s, 'x')",
                (
                    f"d-{hours_ago}-{wait}",
                    answered - timedelta(seconds=wait),
                    answered - timedelta(seconds=wait),
                    answered,
                ),
            )
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    login(page, url, "supervisor", bearer(token(settings, "supervisor")))
    expect(page.locator("#chart svg rect.bar")).to_have_count(3, timeout=3000)
    expect(page.locator("#chart svg rect.bar.above")).to_have_count(1)  # 90 s > 33 s
    expect(page.locator("#chart svg line.target")).to_have_count(1)
    expect(page.locator("#day-count")).to_have_text("4")
    expect(page.locator("[data-report=planned]")).to_have_text("0")
    shot(page, "supervisor")
    assert_accessible(page, "the supervisor's page")
    page.close()


def test_no_page_needs_the_internet() -> None:
    external = re.compile(
        r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import"""
    )
    for path in STATIC.iterdir():
        if path.name.endswith((".html", ".js", ".css")):
            text = path.read_text()
            assert not external.search(text), f"{path.name} loads something from elsewhere"
            assert "cdn" not in text.lower(), path.name
    assert set(PAGES) == {"operator", "patrol", "supervisor"}
