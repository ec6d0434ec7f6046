"""The supervisor's printable service-level report (issue 20) in headless Chromium against the
real API and database: a month of alarms, arrivals, checks and an offline episode, the page's
every figure against the API's, the charts, the breaches and their cases, the CSV download,
Swedish and English, axe, and the page as printed (screenshots and a PDF under
.state/screenshots/)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect

from larmkedja.settings import Settings
from tests.conftest import Broker
from tests.e2e.a11y import assert_accessible
from tests.e2e.pages import SHOTS, bearer, login, shot
from tests.helpers import running_api, settings_for, token

pytestmark = pytest.mark.e2e
TZ = ZoneInfo("Europe/Stockholm")
SINCE, UNTIL = datetime(2026, 3, 1, tzinfo=TZ), datetime(2026, 4, 1, tzinfo=TZ)  # DST on the 29th
# answer times (s) of the site's safety alarms; None: never answered
ANSWERS = [5, 12, 25, 33, 47, 58, 60, 61, 75, 95, 130, 180, 181, 250, 400, 700, None, None]
ARRIVALS = {2: 20, 4: 35, 6: 50, 8: 70}  # alarm index: minutes to the door
RURAL = {6, 8}  # their persons live in a rural area (promise 60 min)


def seed(conn: psycopg.Connection[Any]) -> None:
    def alarm(
        site: str, device: str, kind: str, at: datetime, answer: float | None, **kw: Any
    ) -> Any:
        answered = at + timedelta(seconds=answer) if answer is not None else None
        row = conn.execute(
            "INSERT INTO alarms (site, device_id, kind, priority, source, state, raised_at,"
            " last_event_at, answered_at, answered_by, test) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s) RETURNING alarm_id",
            (
                site,
                device,
                kind,
                kw.get("priority", 1),
                kw.get("source", "device"),
                "answered" if answered else "raised",
                at,
                at,
                answered,
                "op-eva" if answered else None,
                kw.get("test", False),
            ),
        ).fetchone()
        return row[0] if row else None

    for i in RURAL:
        conn.execute(
            "INSERT INTO persons (person_ref, name, address, area_type, updated_by)"
            " VALUES (%s, 'x', 'y', 'rural', 't')",
            (f"P-{i}",),
        )
        conn.execute(
            "INSERT INTO person_devices (device_id, person_ref) VALUES (%s, %s)",
            (f"d-{i}", f"P-{i}"),
        )
    for i, answer in enumerate(ANSWERS):
        at = SINCE + timedelta(days=1 + i, hours=(i * 5) % 24, minutes=7)
        kind = "alarm.fall" if i % 3 == 0 else "alarm.button"
        alarm_id = alarm("solna", f"d-{i}", kind, at, answer)
        if i in ARRIVALS and answer is not None:
            made = at + timedelta(seconds=answer)
            conn.execute(
                "INSERT INTO escalations (site, device_id, alarm_id, reason, state, created_at,"
                " created_by, ack_deadline, arrived_at) VALUES ('solna', %s, %s, 'x', 'arrived',"
                " %s, 'op-eva', %s, %s)",
                (f"d-{i}", alarm_id, made, made, made + timedelta(minutes=ARRIVALS[i])),
            )
    for n in range(2):  # technical, a test, another site, another month: in or out as they should
        alarm(
            "solna",
            f"gw-{n}",
            "device.offline",
            SINCE + timedelta(days=3, hours=n),
            400,
            priority=4,
            source="system",
        )
    alarm("solna", "d-test", "alarm.button", SINCE + timedelta(days=4), 999, test=True)
    alarm("norr", "d-norr", "alarm.button", SINCE + timedelta(days=4), 999)
    alarm("solna", "d-april", "alarm.button", UNTIL + timedelta(hours=1), 999)
    conn.execute(
        "INSERT INTO supervision_plans (plan_id, device_id, site, checks, window_minutes,"
        " timezone, updated_by) VALUES ('p-1', 'cam-1', 'solna', ARRAY['22:00'], 15,"
        " 'Europe/Stockholm', 't')"
    )
    for n, state in enumerate(["done_ok", "done_ok", "missed", "escalated", "rechecked_ok"]):
        at = SINCE + timedelta(days=n + 1, hours=22)
        conn.execute(
            "INSERT INTO supervision_checks (plan_id, night, local_time, site, device_id,"
            " scheduled_for, window_end, state, recheck_due_at) VALUES ('p-1', %s, '22:00',"
            " 'solna', 'cam-1', %s, %s, %s, %s)",
            (
                at.date(),
                at,
                at + timedelta(minutes=15),
                state,
                at if state == "rechecked_ok" else None,
            ),
        )
    for device in ("d-0", "d-1"):
        conn.execute(
            "INSERT INTO devices (device_id, site, first_seen, last_seen, offline_due_at)"
            " VALUES (%s, 'solna', %s, now(), now() + interval '1 h')",
            (device, SINCE - timedelta(days=30)),
        )
    conn.execute(
        "INSERT INTO alerts (site, kind, severity, subject, details, raised_at, resolved_at)"
        " VALUES ('solna', 'device.offline', 'critical', 'd-0', '{}', %s, %s)",
        (SINCE + timedelta(days=10), SINCE + timedelta(days=11)),
    )


@pytest.fixture
def api(database_url: str, broker: Broker) -> Iterator[tuple[Settings, str]]:
    s = settings_for(database_url, broker.host, broker.port)
    with psycopg.connect(database_url) as conn:
        seed(conn)
    with running_api(s) as url:
        yield s, url


def value_at(report: dict[str, Any], path: str) -> Any:
    node: Any = report
    for part in path.split("/"):  # kinds have dots in them, never a slash
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def required(report: dict[str, Any]) -> set[str]:
    """Every figure of the report, as a path the page must show."""
    paths = {"alarms/count"}
    paths |= {f"alarms/{g}/{k}" for g in ("by_kind", "by_priority") for k in report["alarms"][g]}
    for section in ("answer", "arrival", "night", "availability"):
        paths |= {f"{section}/{k}" for k, v in report[section].items() if not isinstance(v, list)}
    for section in ("answer", "arrival"):
        paths |= {
            f"{section}/histogram/{i}/count" for i in range(len(report[section]["histogram"]))
        }
    for i, area in enumerate(report["arrival"]["by_area"]):
        paths |= {f"arrival/by_area/{i}/{k}" for k in area if k != "area_type"}
    for i, hour in enumerate(report["by_hour"]):
        paths |= {f"by_hour/{i}/{k}" for k in hour if k != "hour"}
    return paths | {f"breaches/{i}/value_s" for i in range(len(report["breaches"]))}


def assert_shown(value: Any, text: str, kind: str, decimal: str) -> None:
    """What the page shows is the API's figure, to the precision shown."""
    text = text.replace("\u00a0", " ").replace("\u202f", " ").strip()
    if value is None:
        assert text == "\u2013", text
        return
    if kind == "count":
        assert text.replace(" ", "") == str(value), (text, value)
        return
    if kind == "hms":
        assert re.fullmatch(r"\d+:\d\d:\d\d", text), text
        parts = [int(p) for p in text.split(":")]
        assert sum(p * 60**i for i, p in enumerate(reversed(parts))) == math.floor(value), text
        return
    unit = {"s": " s", "min": " min", "pct": " %"}[kind]
    assert text.endswith(unit), (text, kind)
    number = text.removesuffix(unit).replace(" ", "")
    assert re.fullmatch(rf"-?\d+\{decimal}\d", number), (text, decimal)
    scale = {"s": 1.0, "min": 1 / 60, "pct": 100.0}[kind]
    assert abs(float(number.replace(decimal, ".")) - value * scale) <= 0.05 + 1e-9, (text, value)


def assert_figures(page: Page, report: dict[str, Any], decimal: str) -> None:
    shown = page.eval_on_selector_all(
        "[data-figure]", "els => els.map(e => [e.dataset.figure, e.dataset.kind, e.textContent])"
    )
    assert {path for path, _, _ in shown} == required(report)
    for path, kind, text in shown:
        assert_shown(value_at(report, path), text, kind, decimal)


def test_the_printable_report_shows_what_the_api_says(
    browser: Browser, api: tuple[Settings, str], tmp_path: Any
) -> None:
    settings, url = api
    supervisor = token(settings, "supervisor", "sup-karin")
    params = {"site": "solna", "since": SINCE.isoformat(), "until": UNTIL.isoformat()}
    want = httpx.get(f"{url}/api/v1/reports/service-level", params=params, headers=supervisor)
    report = want.json()
    assert report["answer"]["count"] == 16 and report["arrival"]["count"] == 4  # the data is in
    # the browser in New York: the period is still Stockholm's
    page = browser.new_page(
        viewport={"width": 1100, "height": 900}, timezone_id="America/New_York", locale="sv-SE"
    )
    login(page, url, "report?site=solna&period=month&from=2026-03-15", bearer(supervisor))
    expect(page.locator("#report-body")).to_be_visible(timeout=5000)
    assert page.evaluate("LK.reportPeriod('month', '2026-03-15')") == {
        "since": "2026-03-01T00:00:00+01:00",
        "until": "2026-04-01T00:00:00+02:00",
    }
    for args, since, until in (
        (["day", "2026-03-29"], datetime(2026, 3, 29), datetime(2026, 3, 30)),
        (["week", "2026-03-25"], datetime(2026, 3, 23), datetime(2026, 3, 30)),
        (["week", "2026-10-25"], datetime(2026, 10, 19), datetime(2026, 10, 26)),
        (["range", "2026-10-24", "2026-10-25"], datetime(2026, 10, 24), datetime(2026, 10, 26)),
        (["month", "2026-12-31"], datetime(2026, 12, 1), datetime(2027, 1, 1)),
    ):
        got = page.evaluate("(a) => LK.reportPeriod(...a)", args)
        local = [d.replace(tzinfo=TZ).isoformat() for d in (since, until)]
        assert [got["since"], got["until"]] == local, args

    assert_figures(page, report, ",")
    expect(page.locator(".report-head h1")).to_contain_text("Servicenivårapport \u2013 solna")
    expect(page.locator("#chart-answer svg .bound-label")).to_have_text(["60 s", "180 s"])
    bars = sum(1 for b in report["answer"]["histogram"] if b["count"])
    expect(page.locator("#chart-answer svg rect.bar")).to_have_count(bars)
    expect(page.locator("#chart-arrival figure")).to_have_count(2)
    expect(page.locator("#chart-arrival figure[data-area=rural] .bound-label")).to_have_text(
        "löfte 60\u00a0min"
    )
    expect(page.locator("#chart-hours svg rect.bar.none")).to_have_count(2)  # the unanswered
    rows = page.locator("#t-breaches tbody tr")
    expect(rows).to_have_count(len(report["breaches"]))
    whats = sorted(b["what"] for b in report["breaches"])
    assert whats == ["answer_time"] * 4 + ["arrival"] * 2 + ["check_missed"] + ["unanswered"] * 2
    shot(page, "report-sv")
    assert_accessible(page, "the service-level report in Swedish")

    # the CSV, as the API gives it
    with page.expect_download() as download:
        page.click("#csv")
    csv_text = download.value.path().read_text()
    api_csv = httpx.get(
        f"{url}/api/v1/reports/service-level.csv", params=params, headers=supervisor
    )
    assert csv_text == api_csv.text
    assert download.value.suggested_filename == "service-level-solna-20260301-20260401.csv"

    # every breach can be investigated: an alarm's case, a missed check
    page.locator("#t-breaches tr[data-what=unanswered] a.case-link").first.click()
    expect(page.locator("#case h2")).to_contain_text("alarm.", timeout=3000)
    expect(page.locator("#case .case-log li[data-action=raised]")).to_have_count(1)
    page.locator("#t-breaches tr[data-what=check_missed] a.case-link").click()
    expect(page.locator("#case h2")).to_contain_text("Tillsyn #", timeout=3000)
    expect(page.locator("#case")).to_contain_text("missad")
    assert_accessible(page, "the report with a missed check open")

    page.click("#lang")
    expect(page.locator(".report-head h1")).to_contain_text("Service-level report \u2013 solna")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert_figures(page, report, ".")
    shot(page, "report-en")
    assert_accessible(page, "the service-level report in English")
    page.click("#lang")

    # printed: A4, no navigation, no form, no case panel; every section still there
    page.goto(f"{url}/ui/report?site=solna&period=month&from=2026-03-15")
    expect(page.locator("#report-body")).to_be_visible(timeout=5000)
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    page.emulate_media(media="print")
    for hidden in (".top", "#period", "#t-breaches a.case-link"):
        expect(page.locator(hidden).first).to_be_hidden()
    expect(page.locator("#chart-answer svg")).to_be_visible()
    expect(page.locator("#r-printed")).to_contain_text("sup-karin")
    shot(page, "report-print")
    SHOTS.mkdir(parents=True, exist_ok=True)
    pdf = page.pdf(path=str(SHOTS / "report-print.pdf"), prefer_css_page_size=True)
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 2 <= pages <= 6, f"{pages} A4 pages"
    assert re.search(rb"/MediaBox \[0 0 59[45][.\d]* 84[12][.\d]*\]", pdf)  # A4: 595 x 842 pt
    page.close()


def test_the_report_page_is_the_supervisors_and_refuses_a_backwards_range(
    browser: Browser, api: tuple[Settings, str]
) -> None:
    settings, url = api
    page = browser.new_page()
    login_page = f"{url}/ui/report"
    page.goto(login_page)
    page.fill("#login input", bearer(token(settings, "operator")))
    page.click("#login button[type=submit]")
    expect(page.locator("#login-msg")).to_contain_text("operator")
    expect(page.locator("#main")).to_be_hidden()
    login(
        page,
        url,
        "report?period=range&from=2026-03-10&to=2026-03-01",
        bearer(token(settings, "supervisor")),
    )
    expect(page.locator("#r-error")).to_have_text("Till-datumet ligger före från-datumet.")
    expect(page.locator("#report-body")).to_be_hidden()
    for hostile in ("site=%3Cscript%3E", "from=0&period=day", "period=%27&from=2026-02-30"):
        page.goto(f"{url}/ui/report?{hostile}")
        expect(page.locator("#report-body")).to_be_visible(timeout=5000)  # the defaults instead
        expect(page.locator("#r-error")).to_be_empty()
    assert_accessible(page, "the report page for all sites")
    page.close()
