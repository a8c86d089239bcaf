"""A function whose configuration is unsafe refuses to start, loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devstack.processes import free_port

REPO = Path(__file__).resolve().parents[2]


def test_emulator_tokens_on_a_real_project_stop_the_function_at_start_up(stack):
    env = {**os.environ, **stack.env, "GOOGLE_CLOUD_PROJECT": "coditect-prod",
           "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099", "PYTHONPATH": str(REPO)}
    started = subprocess.run(
        [sys.executable, "-m", "functions_framework", "--target", "admin", "--source",
         str(REPO / "functions" / "admin" / "main.py"), "--host", "127.0.0.1", "--port", str(free_port())],
        env=env, cwd=str(REPO), capture_output=True, text=True, timeout=60,
    )
    assert started.returncode != 0
    assert "FIREBASE_AUTH_EMULATOR_HOST is set but project 'coditect-prod' is not a demo-* project" in started.stderr
