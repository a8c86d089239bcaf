"""The Locust load test runs: a short headless run against the local functions server.

Locust is too CPU-hungry to share two cores with the server for real figures (that is
scripts/bench's job); this only keeps tests/load/locustfile.py working.
"""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_locust_runs_the_mix_with_no_failure(function_server, make_license, stack, tmp_path):
    locust = REPO / ".venv-locust" / "bin" / "locust"
    assert locust.exists(), "locust is missing: ./scripts/test installs it into .venv-locust"
    lic = make_license(seats=5)
    env = {**os.environ, "LOAD_LICENSE_KEY": lic.key, "LOAD_EMULATOR_PROJECT": stack.project_id,
           "LOAD_THINK_S": "0.05 0.2"}
    run = subprocess.run(
        [str(locust), "-f", str(REPO / "tests" / "load" / "locustfile.py"), "--headless", "-u", "8", "-r", "8",
         "-t", "4s", "--host", function_server.base_url, "--csv", str(tmp_path / "load"), "--only-summary"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = {row["Name"]: row for row in csv.DictReader((tmp_path / "load_stats.csv").open())}
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert {"acquire", "heartbeat", "validate"} <= set(rows), sorted(rows)
    print(f"\nlocust smoke: {rows['Aggregated']['Request Count']} requests, "
          f"p99 {rows['Aggregated']['99%']} ms, 0 failures")
