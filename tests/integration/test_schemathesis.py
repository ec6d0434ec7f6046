"""Schemathesis against /openapi.json with valid tokens and `--checks all`: no 5xx, no response
outside the schema, no undocumented status code, nothing the schema allows refused and nothing
it forbids accepted, and `Allow` naming every method of a path."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Broker
from tests.helpers import running_api, running_engine, running_ingest, settings_for, token

pytestmark = pytest.mark.integration
# Every check schemathesis has: the schema states every constraint the server enforces
# (formats, blank strings, ranges, the methods of each path).
CHECKS = "all"


# One test per role (about a minute each here), so the suite's workers share them out.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("role", ["supervisor", "admin", "operator", "patrol"])
def test_the_api_survives_schemathesis(
    role: str, database_url: str, broker: Broker, tmp_path: Path
) -> None:
    exe = shutil.which("schemathesis", path=str(Path(__import__("sys").executable).parent))
    assert exe, "schemathesis is not installed in the virtualenv"
    s = settings_for(database_url, broker.host, broker.port, auth_failures_per_minute=1_000_000)
    with running_ingest(s), running_engine(s), running_api(s) as url:
        header = token(s, role)["Authorization"]
        result = subprocess.run(
            [
                exe,
                "run",
                f"{url}/openapi.json",
                "-H",
                f"Authorization: {header}",
                "--checks",
                CHECKS,
                "--max-examples",
                "25",
                "--workers",
                "1",
                "--phases",
                "examples,coverage,fuzzing",
                "--no-color",
                "--seed",
                "7",
                "--exclude-path",
                "/readyz",
                "--exclude-path",
                "/healthz",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            cwd=tmp_path,
        )
        assert result.returncode == 0, f"as {role}:\n{result.stdout[-5000:]}"
