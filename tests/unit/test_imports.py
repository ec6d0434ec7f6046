"""Each process imports only what it runs (`entrypoints/bootstrap.py`): ingest, the process a
crash restarts with alarms waiting, once took 2.1 s of CPU to start because the CLI imported
FastAPI, the API, the gateway, the engine's sweeps and the benchmark with it. Checked in a fresh
interpreter, since this test run has imported everything already."""

from __future__ import annotations

import subprocess
import sys

import pytest

# What none of the process commands but the API's (and the developer's) needs.
HEAVY = ("fastapi", "uvicorn", "starlette", "api", "simulators", "devstack", "httpx")


def _imported(statement: str) -> set[str]:
    probe = (
        f"import sys\n{statement}\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("process", "statement"),
    [
        ("the CLI", "from entrypoints.cli import build_parser; build_parser()"),
        ("ingest", "import entrypoints.cli, entrypoints.bootstrap"),
        ("the engine", "import entrypoints.cli, entrypoints.bootstrap_engine"),
    ],
)
def test_a_process_imports_only_what_it_runs(process: str, statement: str) -> None:
    assert _imported(statement) & set(HEAVY) == set(), process


def test_the_gateway_does_not_import_the_api_or_the_engine() -> None:
    imported = _imported("import entrypoints.cli, entrypoints.bootstrap, gateway.app")
    assert imported & {"fastapi", "uvicorn", "api", "simulators"} == set()
