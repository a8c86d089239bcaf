"""./scripts/dev: run the whole service locally until Ctrl-C or SIGTERM.

Starts Redis, the Firestore emulator and the KMS stand-in, seeds a demo tenant and
license, serves every function on http://127.0.0.1:$PORT/<name> with gunicorn, keeps
.dev/stack.json up to date for other tools, and prints a walk-through.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from devstack.dev_tokens import emulator_id_token
from devstack.stack import REPO, LocalStack

# DEV_STATE_DIR lets a second stack (e.g. a test of this script) run beside yours.
STATE_DIR = Path(os.environ.get("DEV_STATE_DIR") or REPO / ".dev")
STACK_FILE = STATE_DIR / "stack.json"
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


def _sweep_on_a_timer(stack: LocalStack, base_url: str, interval_s: float, stopping: threading.Event) -> None:
    """What Cloud Scheduler does deployed: POST /sweep with an OIDC token, every interval."""
    import httpx

    while not stopping.wait(interval_s):
        try:
            answer = httpx.post(f"{base_url}/sweep", headers={"Authorization": f"Bearer {stack.scheduler_token()}"},
                                timeout=90)
            report = answer.json()
            if answer.status_code != 200:
                print(f"sweep: {answer.status_code} {report}", flush=True)
            elif report["expired"] or report["reconciled"] or report["revived"]:
                print(f"sweep: expired {report['expired']}, reconciled {report['reconciled']}, "
                      f"revived {report['revived']} in {report['duration_ms']} ms", flush=True)
        except Exception as exc:  # noqa: BLE001 - the timer must outlive a failed run
            print(f"sweep: failed: {type(exc).__name__}: {exc}", flush=True)


def _banner(base_url: str, license_key: str, tokens: dict[str, str], log_path: Path) -> str:
    auth = '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json"'
    return f"""
License server running at {base_url}  (functions: acquire heartbeat borrow release validate health jwks admin sweep)
Function logs: {log_path}     Stack facts: {STACK_FILE}

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

Sweep: runs every {{sweep_interval}} s (SWEEP_INTERVAL_S); now: scripts/sweep-now
More: scripts/dev-token --uid alice --email alice@example.com   (another user's token)
      scripts/licensectl create-license --tenant {DEMO_TENANT} --seats 10 --json
Stop with Ctrl-C.
""".rstrip()


def main() -> int:
    port = int(os.environ.get("PORT", "8080"))
    workers = int(os.environ.get("WORKERS", "3"))
    threads = int(os.environ.get("THREADS", "8"))
    sweep_interval_s = float(os.environ.get("SWEEP_INTERVAL_S", "60"))
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    with LocalStack.start() as stack:
        license_key = _seed_demo_license(stack)
        log_path = STATE_DIR / "functions.log"
        server = stack.serve_functions(port, workers=workers, threads=threads, log_path=log_path)
        try:
            week = 7 * 86400
            tokens = {
                "user": emulator_id_token(stack.project_id, "dev-user", email="dev@example.com", lifetime_s=week),
                "admin": emulator_id_token(stack.project_id, "dev-admin", email="admin@example.com", lifetime_s=week,
                                           tenant=DEMO_TENANT, role="admin"),
                "owner": emulator_id_token(stack.project_id, "dev-vendor", email="vendor@example.com",
                                           lifetime_s=week, role="owner"),
            }
            STACK_FILE.write_text(json.dumps({
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
                "pid": os.getpid(),
            }, indent=2) + "\n")
            key_file = STATE_DIR / "scheduler-oidc-key.pem"  # local only; lets scripts/sweep-now sign
            key_file.write_bytes(stack.oidc.private_key_pem())
            key_file.chmod(0o600)
            threading.Thread(target=_sweep_on_a_timer, args=(stack, server.base_url, sweep_interval_s, stopping),
                             daemon=True).start()
            print(_banner(server.base_url, license_key, tokens, log_path).replace("{sweep_interval}",
                  f"{sweep_interval_s:g}"), flush=True)
            while not stopping.is_set():
                if server.process.poll() is not None:
                    print(f"the function server exited with code {server.process.returncode}; see {log_path}",
                          file=sys.stderr)
                    return 1
                stopping.wait(0.5)
            print("\nstopping ...", flush=True)
        finally:
            STACK_FILE.unlink(missing_ok=True)
            (STATE_DIR / "scheduler-oidc-key.pem").unlink(missing_ok=True)
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
