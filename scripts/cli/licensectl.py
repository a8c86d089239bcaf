"""licensectl: the operator CLI, over the admin function (any environment).

    scripts/licensectl create-tenant "Acme Corp" [--id acme]
    scripts/licensectl create-license --tenant acme --seats 10 [--tier pro] [--features a,b]
        [--expires 2027-12-31T00:00:00Z] [--lease-ttl 360] [--heartbeat-interval 300]
        [--allowed-domain acme.com ...] [--revive-window 0] [--max-borrow 0] [--offline-grace 0]
        [--max-sessions-per-user 0]                               (the key is printed once)
    scripts/licensectl licenses [--tenant acme]
    scripts/licensectl holders LICENSE_ID
    scripts/licensectl force-release LICENSE_ID SESSION_ID
    scripts/licensectl usage LICENSE_ID [--days 30]
    scripts/licensectl events [--license LICENSE_ID] [--limit 50]
    scripts/licensectl sweep status|run|pause|resume [--job NAME | --project P --location R --environment E]
Every command takes --json. Where: --base-url / LICENSECTL_BASE_URL (the functions'
base URL, `<base>/admin/...`), else the running dev stack. Who: --token /
LICENSECTL_TOKEN (a Firebase ID token with role admin or owner), else, for the dev
stack only, a local owner token.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

import httpx

from cli import sweep_control
from cli.stack_config import STACK_FILE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="licensectl", description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("LICENSECTL_BASE_URL"))
    parser.add_argument("--token", default=os.environ.get("LICENSECTL_TOKEN"))
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        return sub

    tenant = command("create-tenant", "create a tenant (owner)")
    tenant.add_argument("name")
    tenant.add_argument("--id", help="tenant id (default: derived from the name)")

    lic = command("create-license", "create a license and print its key once (owner: the vendor)")
    lic.add_argument("--tenant", required=True, help="the customer (tenant id) the license is sold to")
    lic.add_argument("--seats", type=int, required=True, help="concurrent seats (max_seats)")
    lic.add_argument("--tier", default="standard")
    lic.add_argument("--features", default="", help="comma-separated feature names")
    lic.add_argument("--expires", help="RFC 3339 time the license ends (default: never)")
    lic.add_argument("--lease-ttl", type=int, help="seconds a lease lives without a heartbeat (default 360)")
    lic.add_argument("--heartbeat-interval", type=int, help="seconds between heartbeats (default 300)")
    lic.add_argument("--allowed-domain", action="append", default=[], help="restrict to verified emails of a domain")
    lic.add_argument("--revive-window", type=int, default=0, help="seconds a late heartbeat may still revive")
    lic.add_argument("--max-borrow", type=int, default=0, help="longest check-out in seconds (0: no borrowing)")
    lic.add_argument("--offline-grace", type=int, default=0, help="seconds a token stays valid offline past its exp")
    lic.add_argument("--max-sessions-per-user", type=int, default=0, help="live sessions per user (0: no limit)")

    listing = command("licenses", "list licenses")
    listing.add_argument("--tenant")
    holders = command("holders", "who holds the license's seats now")
    holders.add_argument("license_id")
    force = command("force-release", "free a seat now (its holder's next heartbeat gets 410)")
    force.add_argument("license_id")
    force.add_argument("session_id")
    usage = command("usage", "seats now, peak and denials per day")
    usage.add_argument("license_id")
    usage.add_argument("--days", type=int, default=30)
    events = command("events", "the audit log, newest first")
    events.add_argument("--license")
    events.add_argument("--limit", type=int, default=50)
    sweep_control.add_arguments(command("sweep", "the sweep's Cloud Scheduler job: status, run now, pause, resume"))
    return parser


def _target(args: argparse.Namespace) -> tuple[str, str]:
    base_url, token = args.base_url, args.token
    if base_url is None:
        if not STACK_FILE.exists():
            raise SystemExit(f"licensectl: no environment: pass --base-url (or LICENSECTL_BASE_URL), "
                             f"or start ./scripts/dev (no running dev stack in {STACK_FILE.parent}; "
                             "DEV_STATE_DIR names another stack's --state-dir)")
        stack = json.loads(STACK_FILE.read_text())
        base_url = stack["base_url"]
        if token is None:
            from devstack.dev_tokens import emulator_id_token

            token = emulator_id_token(stack["project_id"], "licensectl", email="operator@example.com", role="owner")
    if token is None:
        raise SystemExit("licensectl: pass --token (or LICENSECTL_TOKEN): an ID token with role admin or owner")
    return base_url.rstrip("/"), token


def _request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None, dict[str, str]]:
    """(method, admin path, JSON body, query) for the command."""
    match args.command:
        case "create-tenant":
            return "POST", "tenants", {"name": args.name, **({"id": args.id} if args.id else {})}, {}
        case "create-license":
            body: dict[str, Any] = {
                "max_seats": args.seats, "tier": args.tier, "revive_window_s": args.revive_window,
                "max_borrow_s": args.max_borrow, "offline_grace_s": args.offline_grace,
                "max_sessions_per_user": args.max_sessions_per_user,
                "features": [f.strip() for f in args.features.split(",") if f.strip()],
                "allowed_domains": args.allowed_domain,
            }
            optional = {"tenant": args.tenant, "expires_at": args.expires, "lease_ttl_s": args.lease_ttl,
                        "heartbeat_interval_s": args.heartbeat_interval}
            body.update({k: v for k, v in optional.items() if v is not None})
            return "POST", "licenses", body, {}
        case "licenses":
            return "GET", "licenses", None, {"tenant": args.tenant} if args.tenant else {}
        case "holders":
            return "GET", f"licenses/{args.license_id}/sessions", None, {}
        case "force-release":
            return "DELETE", f"licenses/{args.license_id}/sessions/{args.session_id}", None, {}
        case "usage":
            return "GET", f"licenses/{args.license_id}/usage", None, {"days": str(args.days)}
        case "events":
            query = {"limit": str(args.limit)}
            if args.license:
                query["license"] = args.license
            return "GET", "events", None, query
    raise AssertionError(args.command)


def _human(command: str, answer: dict[str, Any]) -> str:
    if command == "create-tenant":
        return f"tenant {answer['id']} ({answer['name']}) created"
    if command == "create-license":
        lic = answer["license"]
        return (f"license {lic['id']} for tenant {lic['tenant']} ({lic['max_seats']} seats, tier {lic['tier']})\n\n"
                f"  license key: {answer['license_key']}\n\n"
                "The key is shown only now; it is stored hashed and cannot be recovered.")
    if command == "licenses":
        return "\n".join(f"{lic['id']}  {lic['tenant']:<20} {lic['max_seats']:>5} seats  {lic['tier']:<10}"
                         f"{'  SUSPENDED' if lic['suspended'] else ''}{'  REVOKED' if lic['revoked_at'] else ''}"
                         for lic in answer["licenses"]) or "(no licenses)"
    if command == "holders":
        rows = [f"{s['session_id']}  {s['uid']:<20} {s['hardware_id']:<20} {s['state']:<8} since {s['since']}  "
                f"{'counted until' if s['state'] == 'held' else 'until'} {s['expires_at']}"
                for s in answer["sessions"]]
        return "\n".join([f"{answer['seats']['used']} of {answer['seats']['max']} seats in use", *rows])
    if command == "force-release":
        done = f"session {answer.get('session_id', '')} {answer['status'].replace('_', ' ')}".replace("  ", " ")
        return f"{done}\n{answer['notice']}" if answer.get("notice") else done
    if command == "usage":
        rows = [f"{d['date']}  peak {d['peak']:>5}  denials {d['denials']:>5}" for d in answer["days"]]
        return "\n".join([f"now: {answer['seats']['used']} of {answer['seats']['max']} seats", *rows])
    return "\n".join(f"{e['at']}  {e['type']:<18} {e['actor']:<20} {e.get('license') or '':<25} "
                     f"{e.get('session') or ''}"
                     for e in answer["events"]) or "(no events)"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _inert(value: Any) -> Any:
    """The answer with every control character in its strings shown as an escape: values
    such as client hostnames and tenant names come from users, and a terminal would obey
    an escape sequence (or a newline would forge a line) hidden in one."""
    if isinstance(value, str):
        return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), value)
    if isinstance(value, list):
        return [_inert(v) for v in value]
    if isinstance(value, dict):
        return {_inert(k): _inert(v) for k, v in value.items()}
    return value


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sweep":  # Cloud Scheduler's API, not the admin function
        return sweep_control.run(args)
    base_url, token = _target(args)
    method, path, body, query = _request(args)
    try:
        response = httpx.request(method, f"{base_url}/admin/{path}", json=body, params=query,
                                 headers={"Authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as exc:
        print(f"licensectl: cannot reach {base_url}: {exc}", file=sys.stderr)
        return 3
    answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if response.status_code >= 400:
        error = _inert(answer.get("error", {}))
        message = error.get("message", _inert(response.text))
        print(f"licensectl: {response.status_code} {error.get('code', '')}: {message}", file=sys.stderr)
        for problem in error.get("fields", []):
            print(f"  {problem['field']}: {problem['problem']}", file=sys.stderr)
        return 1
    # JSON escapes control characters itself; the human form shows them inert.
    print(json.dumps(answer, indent=2) if args.json else _human(args.command, _inert(answer)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
