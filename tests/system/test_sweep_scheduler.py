"""The sweep under an operator's control: licensectl sweep status|run|pause|resume over the
Cloud Scheduler API (the real google-cloud-scheduler client, served by the stand-in)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from devstack.scheduler_standin import SchedulerStandIn, sweep_job_name

REPO = Path(__file__).resolve().parents[2]


def licensectl(*args: str) -> dict:
    done = subprocess.run([str(REPO / "scripts" / "licensectl"), "sweep", *args, "--json"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "DEV_STATE_DIR": "/nonexistent"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def scheduler():
    runs = threading.Semaphore(0)

    def sweep() -> None:
        runs.release()
        if getattr(sweep, "fail", False):
            raise RuntimeError("the sweep answered 503")

    with SchedulerStandIn() as standin:
        job = sweep_job_name("demo-coditect", "local", "dev")
        standin.add_job(job, interval_s=0.2, target=sweep)
        yield standin, job, runs, sweep


def test_status_run_pause_resume(scheduler):
    standin, job, runs, sweep = scheduler
    target = ["--job", job, "--endpoint", standin.address]
    assert runs.acquire(timeout=10)  # on its schedule
    status = licensectl("status", *target)
    assert (status["job"], status["state"], status["last_result"]) == (job, "ENABLED", "OK")
    assert status["schedule"] and status["last_attempt"]

    paused = licensectl("pause", *target)
    assert paused["state"] == "PAUSED"
    while runs.acquire(timeout=0.5):  # drain an attempt that was already under way
        pass
    assert not runs.acquire(timeout=1.0), "a paused job must not run on its schedule"

    sweep.fail = True
    licensectl("run", *target)  # by hand, even while paused
    assert runs.acquire(timeout=10)
    assert licensectl("resume", *target)["state"] == "ENABLED"
    assert runs.acquire(timeout=10)
    assert licensectl("status", *target)["last_result"].startswith("error 2: RuntimeError: the sweep answered 503")


def test_an_unknown_job_is_a_clear_error(scheduler):
    standin, _, _, _ = scheduler
    done = subprocess.run([str(REPO / "scripts" / "licensectl"), "sweep", "status", "--endpoint", standin.address,
                           "--job", "projects/p/locations/l/jobs/nope"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Job not found: projects/p/locations/l/jobs/nope" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_cli_names_the_job_as_terraform_does():
    module = (REPO / "terraform" / "modules" / "functions" / "main.tf").read_text()
    [terraform_name] = re.findall(r'resource "google_cloud_scheduler_job" "sweep" \{\s*name\s*=\s*"([^"]+)"', module)
    assert terraform_name == "${var.environment}-license-sweep"
    assert sweep_job_name("p", "r", "staging").rsplit("/", 1)[1] == terraform_name.replace("${var.environment}",
                                                                                           "staging")
