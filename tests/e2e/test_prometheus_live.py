"""A real Prometheus (Debian's binary) scrapes the running stack: every target is up, and every
PromQL expression of the rules and the dashboards is valid and returns data."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from devstack.stack import Stack
from larmkedja.events import Kind
from tests.conftest import ROOT
from tests.helpers import make_event, publish_all, scalar, token, wait_until

pytestmark = pytest.mark.e2e
COMPARISONS = (">=", "<=", "==", "!=", ">", "<")


def rule_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/larmkedja.yml").read_text())
    return [(r["alert"], r["expr"]) for g in rules["groups"] for r in g["rules"]]


def dashboard_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                found.append((f"{path.stem}: {panel['title']}", target["expr"]))
    return found


def without_threshold(expr: str) -> str:
    """The part of an alert expression before its last top-level comparison."""
    depth, i = 0, len(expr)
    while i > 0:
        i -= 1
        ch = expr[i]
        if ch in ")]}":
            depth += 1
        elif ch in "([{":
            depth -= 1
        elif depth == 0:
            for op in COMPARISONS:
                if expr[max(0, i - len(op) + 1) : i + 1] == op:
                    return expr[: i - len(op) + 1].strip()
    return expr


def test_threshold_stripping() -> None:
    assert without_threshold("max(x) > 0") == "max(x)"
    assert without_threshold('up{job=~"a"} == 0') == 'up{job=~"a"}'
    assert without_threshold("sum(a) / sum(b) > scalar(max(c))") == "sum(a) / sum(b)"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    state = ROOT / ".state" / f"prom-test-{uuid.uuid4().hex[:6]}"
    s = Stack(state_dir=state, scrape_interval="1s")
    try:
        s.up()
        yield s
    finally:
        s.down()


def query(stack: Stack, expr: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{stack.ports['prometheus']}/api/v1/query"
    body: dict[str, Any] = httpx.get(url, params={"query": expr}, timeout=10).json()
    return body


def activity(stack: Stack) -> None:
    """Enough happening for every metric to exist: events, an alarm answered, an alert,
    a battery estimate, an escalation that arrives, a dead letter."""
    env = stack.env()
    port, url = int(env["LARM_MQTT_PORT"]), env["LARM_API_URL"]
    events = [
        make_event("d-1", Kind.HEARTBEAT, {"interval_s": 60}),
        make_event("d-1", Kind.BATTERY_REPORT, {"percent": 90, "on_mains": True}),
        make_event("d-2", Kind.BATTERY_LOW, {"percent": 9}),
        make_event("d-3", Kind.ALARM_FALL),
    ]
    messages = [(e.topic("prom"), e.to_json()) for e in events]
    messages.append(("larm/v1/prom/d-9/events", b"not json"))
    from larmkedja.settings import Settings

    settings = Settings(database_url=env["LARM_DATABASE_ADMIN_URL"])
    # Each device publishes over its own account (the broker takes its username as client id).
    creds = {
        d: stack.auth.provision(site="prom", device_id=d) for d in ("d-1", "d-2", "d-3", "d-9")
    }
    time.sleep(0.5)  # the broker rereads its password file on SIGHUP
    for topic, payload in messages:
        own = creds[topic.split("/")[3]]
        publish_all("127.0.0.1", port, [(topic, payload)], auth=(own.username, own.password))
    db = env["LARM_DATABASE_URL"]
    wait_until(lambda: scalar(db, "SELECT count(*) FROM alarms") == 1, timeout=5)
    op, patrol = token(settings, "operator"), token(settings, "patrol")
    alarm_id = scalar(db, "SELECT alarm_id FROM alarms")
    httpx.post(f"{url}/api/v1/alarms/{alarm_id}/answer", headers=op).raise_for_status()
    escalated = httpx.post(
        f"{url}/api/v1/alarms/{alarm_id}/escalate", headers=op, json={"reason": "test"}
    ).json()
    httpx.post(
        f"{url}/api/v1/escalations/{escalated['escalation_id']}/arrive", headers=patrol
    ).raise_for_status()


def test_prometheus_scrapes_every_target_and_every_expression_returns_data(stack: Stack) -> None:
    activity(stack)
    time.sleep(7)  # a few scrapes after the activity, so that rates have two samples
    base = f"http://127.0.0.1:{stack.ports['prometheus']}"
    targets = httpx.get(f"{base}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    assert {t["labels"]["job"] for t in targets} == {
        "larmkedja-ingest",
        "larmkedja-engine",
        "larmkedja-api",
        "larmkedja-gateway",
    }
    assert all(t["health"] == "up" for t in targets), [
        (t["scrapeUrl"], t["lastError"]) for t in targets
    ]

    problems = []
    for name, expr in [*rule_expressions(), *dashboard_expressions()]:
        full = query(stack, expr)
        if full.get("status") != "success":
            problems.append(f"{name}: invalid: {full.get('error')}")
            continue
        data = query(stack, without_threshold(expr))["data"]["result"]
        if not data:
            problems.append(f"{name}: no data for {without_threshold(expr)}")
    assert not problems, "\n".join(problems)
    rules = httpx.get(f"{base}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert sum(len(g["rules"]) for g in rules) == 18
    assert all(r["health"] == "ok" for g in rules for r in g["rules"])
