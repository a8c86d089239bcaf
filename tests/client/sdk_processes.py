"""The installed CLI and child Python processes, as the client tests run them.

Imported by name: tests/client is on sys.path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, env: dict | None = None, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """`coditect-license ...` as installed in .venv (the console script)."""
    script = Path(sys.executable).parent / "coditect-license"
    return subprocess.run([str(script), *args], env={**os.environ, **(env or {})}, input=input,
                          capture_output=True, text=True, timeout=timeout)


def python_child(code: str, *, env: dict | None = None) -> subprocess.Popen:
    """A child Python process (the venv's interpreter, so it imports the installed SDK)."""
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
