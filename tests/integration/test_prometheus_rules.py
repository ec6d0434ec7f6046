"""The Prometheus configuration and rules: promtool's checks and rule unit tests."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration
PROM = ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is not installed (deploy/local/install.sh installs prometheus)")
    result = subprocess.run([exe, *args], capture_output=True, text=True, cwd=PROM, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_rules_are_valid() -> None:
    assert "SUCCESS: 18 rules found" in promtool("check", "rules", "rules/larmkedja.yml")


def test_the_scrape_config_is_valid() -> None:
    promtool("check", "config", "prometheus.yml")


def test_the_rule_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "tests/larmkedja_test.yml")


def test_every_alert_has_a_summary_and_a_runbook_paragraph() -> None:
    import yaml

    rules = yaml.safe_load((PROM / "rules" / "larmkedja.yml").read_text())
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["annotations"]["summary"]
            assert f"\n## {rule['alert']}\n" in runbook, rule["alert"]
            assert rule["annotations"]["runbook"] == f"docs/runbook.md#{rule['alert'].lower()}"
