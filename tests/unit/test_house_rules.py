"""The house rules that a reader relies on: no production module over 400 lines, no function
over 60, and the ground package standing on nothing above it. The import layers of
docs/architecture.md are import-linter's contracts in pyproject.toml (`make lint`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "larmkedja",
    "alarms",
    "ingest",
    "gateway",
    "api",
    "simulators",
    "devstack",
    "entrypoints",
)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_package_is_checked() -> None:
    assert len(_modules()) > 100


def test_no_module_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if (n := p.read_text().count("\n")) > MAX_MODULE_LINES
    }
    assert not long, long


def test_no_function_over_60_lines() -> None:
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert not long, long


def test_the_ground_package_imports_no_other_project_package() -> None:
    """Also a contract of import-linter; here so that a reader finds it beside the others."""
    others = set(PACKAGES) - {"larmkedja"}
    found = set()
    for path in (ROOT / "larmkedja").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found |= {f"{path.name}: {n}" for n in names if n.split(".")[0] in others}
    assert not found, found
