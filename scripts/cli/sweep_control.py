"""licensectl sweep status|run|pause|resume: the sweep's Cloud Scheduler job, over its API.

The same commands work against Google (Application Default Credentials; the job named
as Terraform names it: projects/<project>/locations/<region>/jobs/<environment>-license-sweep)
and against the dev stack, whose Cloud Scheduler stand-in (scripts/devstack/
scheduler_standin.py) serves the real google-cloud-scheduler client.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud import scheduler_v1

from cli.stack_config import STACK_FILE

ACTIONS = ("status", "run", "pause", "resume")


def add_arguments(sweep: argparse.ArgumentParser) -> None:
    sweep.add_argument("action", choices=ACTIONS, help="show the job; run it now; pause or resume it")
    sweep.add_argument("--job", default=os.environ.get("LICENSECTL_SWEEP_JOB"),
                       help="the job's full name (LICENSECTL_SWEEP_JOB); default: from --project, --location "
                            "and --environment, or the running dev stack's")
    sweep.add_argument("--project", default=os.environ.get("GOOGLE_CLOUD_PROJECT"))
    sweep.add_argument("--location", help="the job's region, e.g. europe-west1")
    sweep.add_argument("--environment", help="staging or production (Terraform's environment)")
    sweep.add_argument("--endpoint", help="host:port of a plaintext Cloud Scheduler stand-in (default: Google, "
                                          "or the dev stack's)")


def _target(args: argparse.Namespace) -> tuple[str, str | None]:
    """(job name, stand-in endpoint or None for Google)."""
    if args.job or (args.project and args.location and args.environment):
        job = args.job or (f"projects/{args.project}/locations/{args.location}/jobs/"
                           f"{args.environment}-license-sweep")
        return job, args.endpoint
    if STACK_FILE.exists():
        stack = json.loads(STACK_FILE.read_text())
        return stack["sweep_job"], args.endpoint or stack["scheduler_endpoint"]
    raise SystemExit(f"licensectl: which sweep? pass --job, or --project/--location/--environment, or start "
                     f"./scripts/dev (no running dev stack in {STACK_FILE.parent})")


def _client(endpoint: str | None) -> scheduler_v1.CloudSchedulerClient:
    if endpoint is None:
        return scheduler_v1.CloudSchedulerClient()
    import grpc
    from google.cloud.scheduler_v1.services.cloud_scheduler.transports import CloudSchedulerGrpcTransport

    return scheduler_v1.CloudSchedulerClient(
        transport=CloudSchedulerGrpcTransport(channel=grpc.insecure_channel(endpoint)))


def _summary(job: scheduler_v1.Job) -> dict[str, Any]:
    last = job.last_attempt_time
    return {
        "job": job.name,
        "schedule": job.schedule,
        "time_zone": job.time_zone,
        "state": scheduler_v1.Job.State(job.state).name,
        "last_attempt": last.isoformat() if last else None,
        "last_result": ("OK" if job.status.code == 0 else f"error {job.status.code}: {job.status.message}")
                       if last else None,
    }


def run(args: argparse.Namespace) -> int:
    name, endpoint = _target(args)
    client = _client(endpoint)
    call = {"status": client.get_job, "run": client.run_job, "pause": client.pause_job,
            "resume": client.resume_job}[args.action]
    try:
        summary = _summary(call(request={"name": name}, timeout=30))
    except google_exceptions.GoogleAPIError as exc:
        print(f"licensectl: sweep {args.action}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        done = {"run": "started", "pause": "paused", "resume": "resumed"}.get(args.action)
        if done:
            print(f"sweep job {done}")
        print("\n".join(f"{key:<13} {value}" for key, value in summary.items()))
    return 0
