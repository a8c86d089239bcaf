"""./scripts/dev: run the whole service locally until Ctrl-C or SIGTERM.

Starts Redis, the Firestore emulator and the KMS stand-in, seeds a demo tenant and
license, serves every function on http://127.0.0.1:<port>/<name> with gunicorn, keeps
<state dir>/stack.json up to date for other tools (licensectl, sweep-now, dev-token), and
prints a walk-through. `./scripts/dev --help` lists the options.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from devstack.dev_tokens import emulator_id_token
from devstack.firestore_emulator import EmulatorMissing
from devstack.processes import PortInUse, refuse_busy_port
from devstack.scheduler_standin import SchedulerStandIn, sweep_job_name
from devstack.stack import REPO, LocalStack


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="./scripts/dev",
        description="Run the whole license server locally (real Redis, the Firestore emulator, a KMS "
                    "stand-in, every function over HTTP) until Ctrl-C. Each option also reads the "
                    "environment variable named in its help.",
    )
    parser.add_argument("--port", type=int, default=int(env.get("PORT", "8080")),
                        help="port of the functions on 127.0.0.1 (PORT; default 8080). A port in use is refused.")
    parser.add_argument("--workers", type=int, default=int(env.get("WORKERS", "3")),
                        help="gunicorn worker processes (WORKERS; default 3)")
    parser.add_argument("--threads", type=int, default=int(env.get("THREADS", "8")),
                        help="threads per worker (THREADS; default 8)")
    parser.add_argument("--sweep-interval", type=float, default=float(env.get("SWEEP_INTERVAL_S", "60")),
                        metavar="SECONDS", help="how often the sweep runs; 0: never (SWEEP_INTERVAL_S; default 60)")
    parser.add_argument("--state-dir", type=Path, default=Path(env.get("DEV_STATE_DIR") or REPO / ".dev"),
                        help="where stack.json, the function log and the scheduler key go (DEV_STATE_DIR; "
                             "default .dev). Tools find the stack there: a second stack needs its own.")
    return parser.parse_args(argv)


DEMO_TENANT = "demo"


def _seed_demo_license(stack: LocalStack) -> str:
    stack.apply_env()
    from shared.errors import AlreadyExists, ServiceError
    from shared.licensing.provisioning import LicenseSpec
    from shared.runtime import runtime

    provisioning = runtime().provisioning
    try:
        provisioning.create_tenant("Demo tenant", tenant_id=DEMO_TENANT, actor="scripts/dev")
    except AlreadyExists:
        pass  # an emulator we did not start may already have it
    try:
        issued = provisioning.create_license(
            LicenseSpec(tenant_id=DEMO_TENANT, max_seats=3, tier="pro", features=("build", "debug")),
            actor="scripts/dev",
        )
    except ServiceError as exc:
        raise SystemExit(f"seeding the demo license failed: {exc.message}") from exc
    return issued.license_key


def _sweep_once(stack: LocalStack, base_url: str) -> None:
    """What Cloud Scheduler does deployed: POST /sweep with an OIDC token (a failure is raised,
    so the job records it as its last attempt's result)."""
    import httpx

    answer = httpx.post(f"{base_url}/sweep", headers={"Authorization": f"Bearer {stack.scheduler_token()}"},
                        timeout=90)
    report = answer.json()
    if answer.status_code != 200:
        print(f"sweep: {answer.status_code} {report}", flush=True)
        raise RuntimeError(f"sweep answered {answer.status_code}")
    if report["expired"] or report["reconciled"] or report["revived"]:
        print(f"sweep: expired {report['expired']}, reconciled {report['reconciled']}, "
              f"revived {report['revived']} in {report['duration_ms']} ms", flush=True)


def _banner(base_url: str, license_key: str, tokens: dict[str, str], log_path: Path, stack_file: Path,
            firestore: str) -> str:
    auth = '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json"'
    return f"""
License server running at {base_url}  (functions: acquire heartbeat borrow release validate health jwks admin sweep)
Function logs: {log_path}     Stack facts: {stack_file}
Components: {firestore}; redis-server; KMS and Cloud Scheduler: gRPC stand-ins for their real clients

Demo license (tenant '{DEMO_TENANT}', 3 seats):  {license_key}

Walk-through (paste into another shell):
  export TOKEN='{tokens["user"]}'
  curl -s {base_url}/health/ready
  curl -s {auth} -d '{{"license_key":"{license_key}","hardware_id":"laptop-1"}}' {base_url}/acquire
  SESSION=$(curl -s {auth} -d '{{"license_key":"{license_key}","hardware_id":"laptop-1"}}' {base_url}/acquire \\
      | python3 -c 'import json,sys;print(json.load(sys.stdin)["session_id"])')
  curl -s {auth} -d "{{\\"session_id\\":\\"$SESSION\\"}}" {base_url}/heartbeat
  curl -s {auth} -d "{{\\"session_id\\":\\"$SESSION\\"}}" {base_url}/release
  curl -s {auth} -d '{{"license_key":"{license_key}"}}' {base_url}/validate
  curl -s {base_url}/jwks

Administration: the vendor (owner) sells tenant '{DEMO_TENANT}' a license; the tenant's admin sees who
holds seats and frees a stuck one:
  export OWNER='{tokens["owner"]}'
  export ADMIN='{tokens["admin"]}'
  curl -s -H "Authorization: Bearer $OWNER" -H "Content-Type: application/json" \\
      -d '{{"tenant":"{DEMO_TENANT}","max_seats":5,"tier":"team","features":["build"]}}' {base_url}/admin/licenses
  LICENSE=$(curl -s -H "Authorization: Bearer $ADMIN" {base_url}/admin/licenses \\
      | python3 -c 'import json,sys;print(json.load(sys.stdin)["licenses"][0]["id"])')
  curl -s -H "Authorization: Bearer $ADMIN" {base_url}/admin/licenses/$LICENSE/sessions
  curl -s -X DELETE -H "Authorization: Bearer $ADMIN" {base_url}/admin/licenses/$LICENSE/sessions/<session_id>
  curl -s -H "Authorization: Bearer $ADMIN" "{base_url}/admin/events?license=$LICENSE"

Sweep: a Cloud Scheduler job runs it every {{sweep_interval}} s (--sweep-interval; 0: only when asked):
  scripts/licensectl sweep status | run | pause | resume        (scripts/sweep-now: once, directly)
More: scripts/dev-token --uid alice --email alice@example.com   (another user's token)
      scripts/licensectl create-license --tenant {DEMO_TENANT} --seats 10 --json
Stop with Ctrl-C.
""".rstrip()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    port, workers, threads, sweep_interval_s = args.port, args.workers, args.threads, args.sweep_interval
    try:  # two stacks must never share a port (the kernel would split connections between them)
        refuse_busy_port(port, what="./scripts/dev")
    except PortInUse as exc:
        raise SystemExit(f"./scripts/dev: {exc}; stop it or pick another with --port") from None
    state_dir = args.state_dir
    stack_file = state_dir / "stack.json"
    state_dir.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    try:
        local_stack = LocalStack.start()
    except EmulatorMissing as exc:
        raise SystemExit(f"./scripts/dev: {exc}") from None
    with local_stack as stack, SchedulerStandIn() as scheduler:
        license_key = _seed_demo_license(stack)
        log_path = state_dir / "functions.log"
        server = stack.serve_functions(port, workers=workers, threads=threads, log_path=log_path)
        try:
            # Cloud Scheduler's part: a job that sweeps on its schedule, steered with
            # `scripts/licensectl sweep status|run|pause|resume` as in the cloud.
            sweep_job = sweep_job_name(stack.project_id, "local", "dev")
            scheduler.add_job(sweep_job, interval_s=sweep_interval_s,
                              target=lambda: _sweep_once(stack, server.base_url))
            week = 7 * 86400
            tokens = {
                "user": emulator_id_token(stack.project_id, "dev-user", email="dev@example.com", lifetime_s=week),
                "admin": emulator_id_token(stack.project_id, "dev-admin", email="admin@example.com", lifetime_s=week,
                                           tenant=DEMO_TENANT, role="admin"),
                "owner": emulator_id_token(stack.project_id, "dev-vendor", email="vendor@example.com",
                                           lifetime_s=week, role="owner"),
            }
            stack_file.write_text(json.dumps({
                "base_url": server.base_url,
                "project_id": stack.project_id,
                "redis_url": stack.redis_url,
                "firestore_emulator_host": stack.firestore_host,
                "kms_endpoint": stack.kms.address,
                "lease_root_kms_key": stack.env["LEASE_ROOT_KMS_KEY"],
                "license_key": license_key,
                "sweep_audience": stack.env["SWEEP_AUDIENCE"],
                "scheduler_service_account": stack.env["SCHEDULER_SERVICE_ACCOUNT"],
                "oidc_kid": stack.oidc.kid,
                "scheduler_endpoint": scheduler.address,
                "components": {
                    "firestore": stack.firestore_emulator.as_dict(),
                    "kms": "gRPC stand-in (scripts/devstack/kms_standin.py) for the real google-cloud-kms client",
                    "scheduler": "gRPC stand-in (scripts/devstack/scheduler_standin.py) for google-cloud-scheduler",
                },
                "sweep_job": sweep_job,
                "pid": os.getpid(),
            }, indent=2) + "\n")
            key_file = state_dir / "scheduler-oidc-key.pem"  # local only; lets scripts/sweep-now sign
            key_file.write_bytes(stack.oidc.private_key_pem())
            key_file.chmod(0o600)

            print(_banner(server.base_url, license_key, tokens, log_path, stack_file,
                          stack.firestore_emulator.describe()).replace("{sweep_interval}",
                  f"{sweep_interval_s:g}"), flush=True)
            while not stopping.is_set():
                if server.process.poll() is not None:
                    print(f"the function server exited with code {server.process.returncode}; see {log_path}",
                          file=sys.stderr)
                    return 1
                stopping.wait(0.5)
            print("\nstopping ...", flush=True)
        finally:
            stack_file.unlink(missing_ok=True)
            (state_dir / "scheduler-oidc-key.pem").unlink(missing_ok=True)
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
