"""House style: no module of the project over 600 lines (tests excepted: a suite reads best
whole). A module that grows past it is doing two jobs; split it where the jobs part."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 600
# Not the project's code: the virtualenv, embedded services' data, the test suites.
SKIP = {".venv", "var", "tests", "node_modules", "staticfiles"}


def test_no_module_is_over_600_lines() -> None:
    modules = [p for p in ROOT.rglob("*.py") if not SKIP & set(p.relative_to(ROOT).parts[:1])]
    assert len(modules) > 100  # the walk found the project
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in modules
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert not too_long, f"split these modules (lines): {too_long}"
