"""ruff and mypy (configured in pyproject.toml) report nothing over the code we ship."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKED = ["shared", "functions", "scripts", "client/src"]
LINTED_TESTS = ["tests/client", "tests/browser"]  # the SDK's tests are held to the same rules as the SDK;
# so are the console's browser tests


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    result = _run(str(Path(sys.executable).with_name("ruff")), "check", "--no-cache", *CHECKED, *LINTED_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing():
    result = _run(sys.executable, "-m", "mypy", "--no-incremental")  # files: pyproject.toml [tool.mypy]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
