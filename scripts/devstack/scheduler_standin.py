"""In-process stand-in for Cloud Scheduler, for the dev stack and tests.

Cloud Scheduler has no emulator, yet operators steer the sweep through its API (status,
run now, pause, resume: `scripts/licensectl sweep ...`). This module is a real gRPC
server speaking ``google.cloud.scheduler.v1.CloudScheduler`` (GetJob, ListJobs, RunJob,
PauseJob, ResumeJob) to the real ``google-cloud-scheduler`` client, so the same
commands work locally and against Google. Each job calls its target (the dev stack's:
POST /sweep with the scheduler's OIDC token) every `interval_s` while it is enabled,
and records each attempt's time and result as Cloud Scheduler does.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud import scheduler_v1

from devstack.grpc_standin import GrpcStandIn, unary

_SERVICE = "google.cloud.scheduler.v1.CloudScheduler"
_State = scheduler_v1.Job.State
_OK, _UNKNOWN = 0, 2  # google.rpc.Code values, as Job.status carries them


def sweep_job_name(project: str, location: str, environment: str) -> str:
    """The sweep's job, named as terraform/modules/functions names it: <environment>-license-sweep."""
    return f"projects/{project}/locations/{location}/jobs/{environment}-license-sweep"


@dataclass
class _Job:
    name: str
    interval_s: float
    target: Callable[[], None]
    state: Any = _State.ENABLED
    last_attempt: datetime.datetime | None = None
    last_status: tuple[int, str] | None = None  # (google.rpc code, message)
    running: threading.Lock = field(default_factory=threading.Lock)

    def as_proto(self) -> scheduler_v1.Job:
        schedule = ("* * * * *" if self.interval_s == 60 else f"every {self.interval_s:g} seconds (local)"
                    if self.interval_s > 0 else "(none: runs only when asked)")
        job = scheduler_v1.Job(name=self.name, schedule=schedule, time_zone="Etc/UTC", state=self.state,
                               http_target=scheduler_v1.HttpTarget(http_method=scheduler_v1.HttpMethod.POST))
        if self.last_attempt is not None:
            job.last_attempt_time = self.last_attempt
        if self.last_status is not None:
            code, message = self.last_status
            job.status = {"code": code, "message": message}
        return job


class SchedulerStandIn(GrpcStandIn):
    """A CloudScheduler gRPC server whose jobs run a local callable on a fixed interval."""

    service = _SERVICE

    def __init__(self) -> None:
        super().__init__(workers=4)
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    # ---- jobs (the stack's side, not part of the RPC API) --------------------------------
    def add_job(self, name: str, *, interval_s: float, target: Callable[[], None]) -> None:
        """A job calling `target` every `interval_s` while enabled; 0: only when run by hand."""
        job = _Job(name, interval_s, target)
        with self._lock:
            self._jobs[name] = job
        if interval_s > 0:
            threading.Thread(target=self._tick, args=(job,), name=f"scheduler {name}", daemon=True).start()

    def _tick(self, job: _Job) -> None:
        while not self._stopping.wait(job.interval_s):
            if job.state == _State.ENABLED:
                self._attempt(job)

    def _attempt(self, job: _Job) -> None:
        if not job.running.acquire(blocking=False):
            return  # the previous attempt still runs: Cloud Scheduler does not overlap them
        try:
            job.last_attempt = datetime.datetime.now(datetime.UTC)
            try:
                job.target()
                job.last_status = (_OK, "")
            except Exception as exc:  # noqa: BLE001 - an attempt's failure is its recorded result
                job.last_status = (_UNKNOWN, f"{type(exc).__name__}: {exc}")
        finally:
            job.running.release()

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        return {
            "GetJob": unary(self._get_job, scheduler_v1.GetJobRequest, scheduler_v1.Job),
            "ListJobs": unary(self._list_jobs, scheduler_v1.ListJobsRequest, scheduler_v1.ListJobsResponse),
            "RunJob": unary(self._run_job, scheduler_v1.RunJobRequest, scheduler_v1.Job),
            "PauseJob": unary(self._pause_job, scheduler_v1.PauseJobRequest, scheduler_v1.Job),
            "ResumeJob": unary(self._resume_job, scheduler_v1.ResumeJobRequest, scheduler_v1.Job),
        }

    def stop(self) -> None:
        self._stopping.set()  # the jobs' timers end with the server
        super().stop()

    # ---- the RPCs ---------------------------------------------------------------------------
    def _job(self, name: str, context: grpc.ServicerContext) -> _Job:
        with self._lock:
            job = self._jobs.get(name)
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Job not found: {name}")
        return job

    def _get_job(self, request: scheduler_v1.GetJobRequest, context: grpc.ServicerContext) -> scheduler_v1.Job:
        return self._job(request.name, context).as_proto()

    def _list_jobs(self, request: scheduler_v1.ListJobsRequest,
                   context: grpc.ServicerContext) -> scheduler_v1.ListJobsResponse:
        with self._lock:
            jobs = [job.as_proto() for name, job in sorted(self._jobs.items())
                    if name.startswith(request.parent + "/jobs/")]
        return scheduler_v1.ListJobsResponse(jobs=jobs)

    def _run_job(self, request: scheduler_v1.RunJobRequest, context: grpc.ServicerContext) -> scheduler_v1.Job:
        job = self._job(request.name, context)
        # Like Cloud Scheduler: the run is started, not awaited; the job comes back at once.
        threading.Thread(target=self._attempt, args=(job,), daemon=True).start()
        return job.as_proto()

    def _pause_job(self, request: scheduler_v1.PauseJobRequest, context: grpc.ServicerContext) -> scheduler_v1.Job:
        job = self._job(request.name, context)
        job.state = _State.PAUSED
        return job.as_proto()

    def _resume_job(self, request: scheduler_v1.ResumeJobRequest,
                    context: grpc.ServicerContext) -> scheduler_v1.Job:
        job = self._job(request.name, context)
        job.state = _State.ENABLED
        return job.as_proto()
