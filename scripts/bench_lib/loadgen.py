"""Runs one load phase in loadgen.js and returns its figures.

The plan and the figures pass through JSON files in a temporary folder (a phase's
figures can be large: the sessions it leaves live). The generator is a child process,
so its CPU time is its own (reported per phase).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from devstack.processes import spawn
from devstack.stack import REPO

SCRIPT = Path(__file__).with_name("loadgen.js")

SEAT_PATHS = {"acquire": "/acquire", "heartbeat": "/heartbeat", "release": "/release", "validate": "/validate"}


class LoadgenError(RuntimeError):
    """The load generator failed to run a phase (not a failed request: those are counted)."""


def node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "absent"
    return subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()


def undici_version() -> str:
    try:
        return json.loads((REPO / "node_modules" / "undici" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "absent"


def run_phase(plan: dict, *, hard_limit_s: float, on_event: Callable[[str], None] | None = None) -> dict:
    """Run one phase and return the generator's figures.

    Args:
        plan: the phase (see loadgen.js); paths and timeout get defaults here.
        hard_limit_s: the generator is killed past this, even if it hangs.
        on_event: called with "window" when the measured window starts and "midpoint"
            halfway through it, while the load runs (from a reader thread).
    """
    node = shutil.which("node")
    if node is None:
        raise LoadgenError("node is required for the load generator (./scripts/bootstrap installs it)")
    if undici_version() == "absent":
        raise LoadgenError("node_modules/undici is missing: run ./scripts/bootstrap")
    plan = {"paths": SEAT_PATHS, "timeout_s": 30, **plan}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        plan_path, result_path = Path(tmp) / "plan.json", Path(tmp) / "result.json"
        plan_path.write_text(json.dumps(plan))
        with open(Path(tmp) / "stderr.txt", "w+b") as stderr:
            # spawn(): the generator dies with the bench (parent-death signal), never orphaned.
            process = spawn([node, str(SCRIPT), str(plan_path), str(result_path)],
                            stdout=subprocess.PIPE, stderr=stderr, cwd=str(REPO))
            reader = threading.Thread(target=_relay_events, args=(process.stdout, on_event), daemon=True)
            reader.start()
            try:
                process.wait(timeout=hard_limit_s)
            except subprocess.TimeoutExpired as exc:
                process.kill()
                process.wait()
                raise LoadgenError(f"the load generator ran past {hard_limit_s:.0f} s and was stopped") from exc
            finally:
                reader.join(timeout=5)
            if process.returncode != 0:
                stderr.seek(0)
                raise LoadgenError(f"the load generator failed ({process.returncode}): "
                                   f"{stderr.read()[-2000:].decode(errors='replace').strip()}")
        return json.loads(result_path.read_text())


def _relay_events(stream, on_event: Callable[[str], None] | None) -> None:
    for line in stream:
        try:
            event = json.loads(line)["event"]
        except (ValueError, KeyError, TypeError):
            continue
        if on_event is not None:
            on_event(event)
    stream.close()
