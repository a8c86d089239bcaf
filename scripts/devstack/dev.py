"""./scripts/dev: run the whole service locally until Ctrl-C or SIGTERM.

Starts the local stack (Redis, the Firestore and Pub/Sub emulators, stand-ins for Google's APIs) and
the Firebase Auth emulator, seeds a demo tenant and license and three sign-in accounts,
serves every function on http://127.0.0.1:<port>/<name> with gunicorn, keeps
<state dir>/stack.json up to date for other tools (licensectl, sweep-now, dev-token), and
prints a walk-through with real ID tokens. `./scripts/dev --help` lists the options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.auth_emulator import EMULATOR_API_KEY, AuthEmulator, FirebaseToolsMissing
from devstack.firestore_emulator import EmulatorMissing
from devstack.processes import PortInUse, refuse_busy_port
from devstack.scheduler_standin import SchedulerStandIn, sweep_job_name
from devstack.stack import PROJECT_ID, REPO, LocalStack


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="./scripts/dev",
        description="Run the whole license server locally (real Redis, the Firestore emulator, the Firebase "
                    "Auth emulator with seeded accounts, stand-ins for Google's APIs, every function over "
                    "HTTP) until Ctrl-C. Each option also reads the environment variable named in its help.",
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
    parser.add_argument("--persist", action="store_true", default=env.get("DEV_PERSIST", "") == "1",
                        help="keep tenants, licenses, sessions and sign-in accounts across restarts, in "
                             "<state dir>/data (DEV_PERSIST=1). The demo license is made once and its key kept "
                             "there (mode 0600). Saved when the stack stops (Ctrl-C, SIGTERM): a killed stack "
                             "keeps no Firestore change of that run. Delete <state dir>/data to start afresh.")
    return parser.parse_args(argv)


DEMO_TENANT = "demo"


@dataclass(frozen=True)
class DevAccount:
    """A sign-in account seeded into the Auth emulator (fixed uid and password: the same on every run)."""

    uid: str
    email: str
    password: str
    claims: Mapping[str, Any] = field(default_factory=dict)


# The walk-through's three: the vendor, the demo tenant's administrator, a user.
DEV_ACCOUNTS = {
    "owner": DevAccount("dev-vendor", "vendor@example.com", "dev-owner-pass", {"role": "owner"}),
    "admin": DevAccount("dev-admin", "admin@example.com", "dev-admin-pass", {"role": "admin", "tenant": DEMO_TENANT}),
    "user": DevAccount("dev-user", "dev@example.com", "dev-user-pass"),
}
# scripts/licensectl, run without --token against the dev stack, makes an emulator token of
# its own for this uid (scripts/cli/licensectl.py). The admin function checks accounts here,
# so the account must exist, with the claims that token carries.
LICENSECTL_ACCOUNT = DevAccount("licensectl", "operator@example.com", "dev-operator-pass", {"role": "owner"})


def _seed_accounts(auth: AuthEmulator) -> dict[str, str]:
    """Create (or, kept from a previous run, reset) the accounts; a fresh ID token of each of DEV_ACCOUNTS."""
    for account in (*DEV_ACCOUNTS.values(), LICENSECTL_ACCOUNT):
        auth.put_user(account.uid, email=account.email, password=account.password, claims=dict(account.claims))
    # Signed in after the claims are set: a token carries the claims of its sign-in.
    return {name: auth.sign_in_with_password(account.email, account.password)["idToken"]
            for name, account in DEV_ACCOUNTS.items()}


def _kept_demo_key(key_file: Path) -> str | None:
    """The demo key a previous run stored, if it still opens a license of the demo tenant."""
    from shared.licensing.license_keys import MalformedKey, canonical_key, key_hash
    from shared.runtime import runtime

    try:
        key = json.loads(key_file.read_text())["license_key"]
        license_id = runtime().store.license_id_for_key(key_hash(canonical_key(key)))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, MalformedKey):  # not a file we wrote: make a new license
        return None
    kept = runtime().store.get_license(license_id) if license_id else None
    return key if kept is not None and kept.tenant_id == DEMO_TENANT else None


def _seed_demo_license(key_file: Path | None) -> str:
    """The demo tenant's license key: a new license, or with `key_file` (--persist) the one it names."""
    from shared.errors import AlreadyExists, ServiceError
    from shared.licensing.provisioning import LicenseSpec
    from shared.runtime import runtime

    provisioning = runtime().provisioning
    try:
        provisioning.create_tenant("Demo tenant", tenant_id=DEMO_TENANT, actor="scripts/dev")
    except AlreadyExists:
        pass  # kept from a previous run (--persist), or an emulator we did not start
    if key_file is not None and (kept := _kept_demo_key(key_file)) is not None:
        return kept
    try:
        issued = provisioning.create_license(
            LicenseSpec(tenant_id=DEMO_TENANT, max_seats=3, tier="pro", features=("build", "debug")),
            actor="scripts/dev",
        )
    except ServiceError as exc:
        raise SystemExit(f"seeding the demo license failed: {exc.message}") from exc
    if key_file is not None:  # a key is shown once, never stored by the service: keep it for the next run
        _write_private(key_file, json.dumps({"license_id": issued.license.id, "license_key": issued.license_key}))
    return issued.license_key


def _license_id(license_key: str) -> str:
    from shared.runtime import runtime

    return runtime().licenses.by_key(license_key).license.id


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (0600 from its creation on, not chmod-ed after)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w") as out:
        out.write(text + "\n")


EXPIRY_SCAN_INTERVAL_S = 3600
# Deployed, notify runs every minute; here more often, so a walk-through's webhook arrives
# within seconds of the sweep publishing its event.
NOTIFY_INTERVAL_S = 5


def _scheduled_call(stack: LocalStack, base_url: str, path: str = "sweep") -> None:
    """What Cloud Scheduler does deployed: POST /sweep, /sweep/expiry or /notify with an OIDC
    token for that function (a failure is raised, so the job records it as its last attempt's
    result)."""
    import httpx

    token = stack.scheduler_token(path.split("/", 1)[0])
    answer = httpx.post(f"{base_url}/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=90)
    report = answer.json()
    if answer.status_code != 200:
        print(f"{path}: {answer.status_code} {report}", flush=True)
        raise RuntimeError(f"{path} answered {answer.status_code}")
    if path == "notify" and report["attempted"]:
        print(f"notify: {report['delivered']} delivered, {report['retrying']} to retry, {report['parked']} parked, "
              f"{report['refused']} refused", flush=True)
    if path == "sweep" and (report["expired"] or report["reconciled"] or report["revived"]):
        print(f"sweep: expired {report['expired']}, reconciled {report['reconciled']}, "
              f"revived {report['revived']} in {report['duration_ms']} ms", flush=True)


@dataclass(frozen=True)
class _BannerFacts:
    base_url: str
    license_key: str
    license_id: str
    tokens: dict[str, str]
    auth_host: str
    components: dict[str, dict[str, Any]]
    log_path: Path
    stack_file: Path
    sweep_interval_s: float
    kept_in: Path | None  # --persist: the data dir
    expiry_job: str  # the daily expiry scan's Cloud Scheduler job (here hourly)
    scheduler: str  # the Cloud Scheduler stand-in's endpoint
    mail_folder: Path  # where the SMTP relay writes each message it receives


def _sign_in_command(auth_host: str) -> str:
    """A shell function printing a fresh ID token: `signin EMAIL PASSWORD`."""
    url = f"http://{auth_host}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key={EMULATOR_API_KEY}"
    body = '{\\"email\\":\\"$1\\",\\"password\\":\\"$2\\",\\"returnSecureToken\\":true}'
    return (f'signin() {{ curl -s {shlex.quote(url)} -H "Content-Type: application/json" -d "{body}" \\\n'
            f"      | python3 -c 'import json,sys;print(json.load(sys.stdin)[\"idToken\"])'; }}")


def _banner(facts: _BannerFacts) -> str:
    base_url, license_key, tokens, license_id = facts.base_url, facts.license_key, facts.tokens, facts.license_id
    auth = '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json"'
    components = "\n".join(f"  {name}: {entry['describe']}" for name, entry in facts.components.items())
    if facts.kept_in is not None:
        kept = (f"Kept across restarts (--persist): tenants, licenses, sessions and accounts in {facts.kept_in}\n"
                f"  (saved at Ctrl-C; delete that folder to start afresh)")
    else:
        kept = "Nothing is kept after Ctrl-C (--persist keeps tenants, licenses, sessions and accounts)"
    roles = {"owner": "the vendor (role owner)", "admin": f"the admin of tenant '{DEMO_TENANT}'", "user": "a user"}
    accounts = "\n".join(f"  {roles[name]:<30} {account.email:<22} {account.password}"
                         for name, account in DEV_ACCOUNTS.items())
    user = DEV_ACCOUNTS["user"]
    expiry_scan = f"scripts/licensectl sweep run --job {facts.expiry_job} --endpoint {facts.scheduler}"
    return f"""
License server running at {base_url}
  (functions: acquire heartbeat borrow release validate health jwks admin sweep notify)
Function logs: {facts.log_path}     Stack facts: {facts.stack_file}
Components:
{components}
{kept}

Demo license (tenant '{DEMO_TENANT}', 3 seats):  {license_key}   ({license_id})

Admin console: {base_url}/console/
  sign in with an account below: the vendor sees every tenant, the admin tenant '{DEMO_TENANT}' only,
  the user has nothing to administer

Accounts (Firebase Auth emulator at {facts.auth_host}; e-mail / password):
{accounts}
The ID tokens below are theirs, from signing in; they expire after an hour. A fresh one:
  {_sign_in_command(facts.auth_host)}
  export TOKEN=$(signin {user.email} {user.password})

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
holds seats and frees a stuck one (the admin function checks their accounts in the emulator, as in production):
  export OWNER='{tokens["owner"]}'
  export ADMIN='{tokens["admin"]}'
  curl -s -H "Authorization: Bearer $OWNER" -H "Content-Type: application/json" \\
      -d '{{"tenant":"{DEMO_TENANT}","max_seats":5,"tier":"team","features":["build"]}}' {base_url}/admin/licenses
  LICENSE=$(curl -s -H "Authorization: Bearer $ADMIN" {base_url}/admin/licenses \\
      | python3 -c 'import json,sys;print(json.load(sys.stdin)["licenses"][0]["id"])')
  curl -s -H "Authorization: Bearer $ADMIN" {base_url}/admin/licenses/$LICENSE/sessions
  curl -s -X DELETE -H "Authorization: Bearer $ADMIN" {base_url}/admin/licenses/$LICENSE/sessions/<session_id>
  curl -s -H "Authorization: Bearer $ADMIN" "{base_url}/admin/events?license=$LICENSE"

The client's CLI (client/, in .venv) signs in against the emulator and keeps refreshing its token:
  export CODITECT_LICENSE_SERVER={base_url} CODITECT_LICENSE_KEY={license_key}
  .venv/bin/coditect-license login --auth-emulator {facts.auth_host} --email {user.email}   # {user.password}
  .venv/bin/coditect-license acquire --hold

Usage reports: a short load (six users, three seats: some are refused), then what it looked like.
The sweep closes each hour two minutes after it ends; the hour under way is computed live:
  scripts/demo-load --users 6 --seconds 20
  scripts/licensectl report {license_id} --granularity hour --from $(date -u +%F)
  scripts/licensectl report-users {license_id}
  curl -s -H "Authorization: Bearer $ADMIN" "{base_url}/admin/licenses/{license_id}/report?granularity=hour&format=csv"
  scripts/licensectl statement {license_id} --month $(date -u +%Y-%m) > statement.jws   # closed hours, signed
  .venv/bin/coditect-license verify-statement statement.jws --jwks {base_url}/jwks

Notifications: receive the demo tenant's webhooks on this machine, each signature checked with the SDK,
then make an event. The sweep publishes it to Pub/Sub, the notify function delivers it (every {NOTIFY_INTERVAL_S} s):
  scripts/licensectl webhook-listen --tenant {DEMO_TENANT} --events license.suspended --count 1 &
  scripts/licensectl suspend {license_id} && scripts/licensectl sweep run
  scripts/licensectl resume {license_id}
Expiry warnings by e-mail (an administrator without a webhook): a mailto: endpoint gets license.expiring
(30, 7 and 1 days before) and license.expired, sent through the stack's SMTP relay as through an operator's
(STARTTLS verified, AUTH with the password from the Secret Manager stand-in). A license ending in five days,
then the daily expiry scan and the sweep run now; notify mails the 7-day warning within seconds:
  scripts/licensectl create-webhook mailto:admin@{DEMO_TENANT}.example --tenant {DEMO_TENANT}
  scripts/licensectl create-license --tenant {DEMO_TENANT} --seats 1 --expires $(date -u -d '+5 days' +%FT%TZ)
  {expiry_scan}; sleep 2; scripts/licensectl sweep run
  ls {facts.mail_folder}    # every message the relay received, one .eml file each (a mail reader opens them)
  scripts/licensectl test-webhook <its id>    # a test e-mail at once

Sweep: a Cloud Scheduler job runs it every {facts.sweep_interval_s:g} s (--sweep-interval; 0: only when asked):
  scripts/licensectl sweep status | run | pause | resume        (scripts/sweep-now: once, directly)
More: scripts/licensectl create-license --tenant {DEMO_TENANT} --seats 10 --json
      scripts/dev-token --uid alice   (a made-up user without an account: enough for the seat functions)
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
    data_dir = state_dir / "data" if args.persist else None
    state_dir.mkdir(parents=True, exist_ok=True)
    if data_dir is not None:
        data_dir.mkdir(mode=0o700, exist_ok=True)
    # The runtime's JSON logging (configured when seeding builds it) would log every request
    # this process makes (seeding, health checks, the sweep job) above the banner.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    # Stopped in reverse: the function server first (no more writes), then the scheduler,
    # the stack (Firestore saves its data as it stops) and the Auth emulator.
    with contextlib.ExitStack() as running:
        auth = AuthEmulator(PROJECT_ID, data_dir=data_dir / "auth" if data_dir else None)
        try:
            auth.launch()  # from this (the main) thread: see AuthEmulator.launch
            running.callback(auth.stop)
            # meanwhile the emulator boots; the SMTP relay drops each message it receives in <state dir>/mail
            stack = running.enter_context(LocalStack.start(data_dir=data_dir, mail_dir=state_dir / "mail"))
            auth.wait_until_ready()
        except (EmulatorMissing, FirebaseToolsMissing) as exc:
            raise SystemExit(f"./scripts/dev: {exc}") from None
        scheduler = running.enter_context(SchedulerStandIn())
        # The real emulator instead of the stack's emulator-token mode: tokens come from
        # signing in, and the admin function checks each account as in production.
        auth_env = {"FIREBASE_AUTH_EMULATOR_HOST": auth.host, "ADMIN_CHECK_ACCOUNTS": "1"}
        stack.apply_env()
        os.environ.update(auth_env)  # before the seeding builds this process's runtime from it
        license_key = _seed_demo_license(data_dir / "demo-license.json" if data_dir else None)
        license_id = _license_id(license_key)
        tokens = _seed_accounts(auth)
        log_path = state_dir / "functions.log"
        server = stack.serve_functions(port, workers=workers, threads=threads, log_path=log_path, extra_env=auth_env)
        running.callback(server.stop)
        running.callback(stack_file.unlink, missing_ok=True)
        key_file = state_dir / "scheduler-oidc-key.pem"  # local only; lets scripts/sweep-now sign
        running.callback(key_file.unlink, missing_ok=True)

        # Cloud Scheduler's part: a job that sweeps on its schedule, steered with
        # `scripts/licensectl sweep status|run|pause|resume` as in the cloud.
        sweep_job = sweep_job_name(stack.project_id, "local", "dev")
        scheduler.add_job(sweep_job, interval_s=sweep_interval_s,
                          target=lambda: _scheduled_call(stack, server.base_url))
        # The daily expiry scan (deployed at 06:00 UTC): here hourly, so a demo sees it.
        expiry_job = sweep_job.replace("-license-sweep", "-license-expiry")
        scheduler.add_job(expiry_job, interval_s=EXPIRY_SCAN_INTERVAL_S,
                          target=lambda: _scheduled_call(stack, server.base_url, "sweep/expiry"))
        # Webhook delivery (the notify function): takes what the sweep published and delivers it.
        scheduler.add_job(sweep_job.replace("-license-sweep", "-license-notify"), interval_s=NOTIFY_INTERVAL_S,
                          target=lambda: _scheduled_call(stack, server.base_url, "notify"))
        components: dict[str, dict[str, Any]] = {
            **stack.components(),
            "scheduler": {"endpoint": scheduler.address,
                          "describe": "Cloud Scheduler: a gRPC stand-in for google-cloud-scheduler "
                                      "(scripts/devstack/scheduler_standin.py)"},
            "auth": auth.component(),
        }
        stack_file.write_text(json.dumps({
            "base_url": server.base_url,
            "console_url": f"{server.base_url}/console/",
            "project_id": stack.project_id,
            "redis_url": stack.redis_url,
            "firestore_emulator_host": stack.firestore_host,
            "pubsub_emulator_host": stack.pubsub_host,
            "firebase_auth_emulator_host": auth.host,
            "kms_endpoint": stack.kms.address,
            "lease_root_kms_key": stack.env["LEASE_ROOT_KMS_KEY"],
            "license_key": license_key,
            "license_id": license_id,
            # local, throw-away accounts of a demo project; printed in the banner as well
            "accounts": {name: {"uid": a.uid, "email": a.email, "password": a.password, "claims": dict(a.claims)}
                         for name, a in {**DEV_ACCOUNTS, "licensectl": LICENSECTL_ACCOUNT}.items()},
            "sweep_audience": stack.env["SWEEP_AUDIENCE"],
            "scheduler_service_account": stack.env["SCHEDULER_SERVICE_ACCOUNT"],
            "oidc_kid": stack.oidc.kid,
            "scheduler_endpoint": scheduler.address,
            "components": components,
            "data_dir": str(data_dir) if data_dir else None,
            "sweep_job": sweep_job,
            "pid": os.getpid(),
            # the functions' settings (secret names, never values): tools connect as they do
            "env": {**stack.env, **auth_env},
        }, indent=2) + "\n")
        key_file.write_bytes(stack.oidc.private_key_pem())
        key_file.chmod(0o600)

        print(_banner(_BannerFacts(server.base_url, license_key, license_id, tokens, auth.host, components, log_path,
                                   stack_file, sweep_interval_s, data_dir, expiry_job, scheduler.address,
                                   stack.mail.folder)), flush=True)
        while not stopping.is_set():
            if server.process.poll() is not None:
                print(f"the function server exited with code {server.process.returncode}; see {log_path}",
                      file=sys.stderr)
                return 1
            stopping.wait(0.5)
        print("\nstopping ...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
