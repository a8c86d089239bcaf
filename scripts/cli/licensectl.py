"""licensectl: the operator CLI, over the admin function and Firebase Auth (any environment).

The admin function (openapi.yaml /admin/...; every route has its command):
    licensectl create-tenant "Acme Corp" [--id acme]                                   (owner)
    licensectl tenants [--limit 100] [--after ID] [--all]                              (owner)
    licensectl create-license --tenant acme --seats 10 [--tier pro] [--features a,b]
        [--expires 2027-12-31T00:00:00Z] [--lease-ttl 360] [--heartbeat-interval 300]
        [--allowed-domain acme.com ...] [--revive-window 0] [--max-borrow 0] [--offline-grace 0]
        [--max-sessions-per-user 0] [--ci-seats 0] [--support-contact TEXT] [--policy FILE]
                                                        (owner; the key is printed once)
    licensectl licenses [--tenant acme] [--limit 100] [--after ID] [--all]
                                                 (state, seats in use, expiry of each)
    licensectl license LICENSE_ID                 (every setting; the seat policy in one line)
    licensectl update-license LICENSE_ID [--seats N] [--tier T] [--features a,b] [--expires TIME|never]
        [--lease-ttl N] [--heartbeat-interval N] [--allowed-domain D ... | --no-allowed-domains]
        [--revive-window N] [--max-borrow N] [--offline-grace N] [--max-sessions-per-user N]
        [--ci-seats N] [--support-contact TEXT | --no-support-contact] [--anomaly-rule RULE=MAX[/WINDOW_S] ...]
                                 (entitlements: owner; an admin sets the restrictions and the anomaly rules:
                                 hardware_per_user, users_per_hardware, addresses_per_session, grants_per_user;
                                 e.g. grants_per_user=10/600; MAX 0 switches one off)
    licensectl suspend LICENSE_ID | resume LICENSE_ID
    licensectl policy LICENSE_ID      the seat policy: groups and their members, include/exclude,
                                      reservations, maximums, overdraft with the seats it grants
                                      (--json: the policy itself, as set-policy takes it)
    licensectl set-policy LICENSE_ID --file policy.json|- | --reset
                                      replaces the whole policy (openapi.yaml SeatPolicy); its
                                      overdraft: owner only (an admin sends it unchanged)
    licensectl revoke LICENSE_ID [--yes]     (owner; asks first; without a terminal needs --yes)
    licensectl holders LICENSE_ID
    licensectl force-release LICENSE_ID SESSION_ID
    licensectl usage LICENSE_ID [--days 30]
    licensectl report LICENSE_ID [--from TIME] [--to TIME] [--granularity hour|day] [--csv]
                                      peak, p95, average and utilization, seat-hours, hours at 100%,
                                      denials, the seats that would have covered 99% of the demand;
                                      a row per hour or UTC day and a sparkline of the daily peaks
                                      (TIME: RFC 3339 with its zone, or YYYY-MM-DD meaning 00:00Z; --to
                                      not included; default: from 00:00Z 30 days ago until now)
    licensectl report-users LICENSE_ID [--from TIME] [--to TIME] [--sort seat_hours|sessions|last_seen|uid]
        [--order desc|asc] [--limit 100] [--after CURSOR] [--csv]   who held its seats, how long
    licensectl tenant-report [--tenant acme] [--from TIME] [--to TIME] [--csv]
                                      a report line per license (owner: every tenant's), and the totals
    licensectl statement LICENSE_ID --month YYYY-MM      the month's signed usage statement (closed hours;
                                      verify: coditect-license verify-statement FILE --jwks URL)
    licensectl queue LICENSE_ID                 the wait queue, in order
    licensectl remove-ticket LICENSE_ID TICKET  take a ticket out of it
    licensectl create-key NAME --license LICENSE_ID [--license ...] [--mode seat|validate]
                                      a machine key for build runners and CI jobs (printed once)
    licensectl keys [--tenant acme] [--limit 100] [--after ID] [--all]   (never the key itself)
    licensectl revoke-key KEY_ID      refused within 30 s everywhere; its seats freed now
    licensectl events [--license LICENSE_ID] [--tenant acme] [--type T] [--actor UID] [--from TIME] [--to TIME]
        [--after EVENT_ID] [--limit 50]   newest first, with before -> after
    licensectl anomalies [--license LICENSE_ID | --tenant acme] [--state open|acknowledged] [--limit 100]
        [--after FLAG_ID] [--all]     conflict flags (key sharing, seat cycling): flag, license, rule, subject,
                                      count over the threshold in its window, last seen, state (--json: each
                                      with its evidence; there is no command for one flag)
    licensectl acknowledge-anomaly FLAG_ID [--note TEXT]   raised again only if its count grows
    licensectl create-webhook URL [--tenant acme] [--events a,b] [--description TEXT]
                                      a webhook endpoint (https); its signing secret is printed once
    licensectl webhooks [--tenant acme] [--limit 100] [--after ID] [--all]
                                      URL, events (or all), enabled or why the service disabled it
    licensectl webhook WEBHOOK_ID     every setting; until when the secret before a rotation signs
    licensectl update-webhook WEBHOOK_ID [--url URL] [--events a,b | --all-events] [--enable | --disable]
        [--description TEXT]          (--enable also clears why the service disabled it)
    licensectl delete-webhook WEBHOOK_ID [--yes]   (asks first; without a terminal needs --yes)
    licensectl rotate-webhook-secret WEBHOOK_ID [--overlap SECONDS]
                                      a new secret, printed once; the one before signs beside it for
                                      the overlap (default a day; 0: stops now)
    licensectl webhook-deliveries WEBHOOK_ID [--limit 20]   the delivery log: each delivery (event, type,
                                      state, attempts) with its last attempts (time, status, latency, error)
    licensectl test-webhook WEBHOOK_ID   delivers a webhook.test event now: delivered or not, status,
                                      latency, error (exit 1 when not delivered)
    licensectl webhook-listen [--port 0] [--tenant acme] [--events a,b] [--count N | --once]
                                      the local dev stack only: receives the tenant's webhooks on
                                      127.0.0.1, verifies each with the SDK's verify_webhook, prints a
                                      line per event; its endpoint is deleted on Ctrl-C or SIGTERM
Firebase Auth, directly (custom claims role/tenant; see cli/account_roles.py):
    licensectl grant-role EMAIL_OR_UID --role owner|admin [--tenant T] [--create --password-stdin]
    licensectl revoke-role EMAIL_OR_UID          (also revokes the account's refresh tokens)
    licensectl whois EMAIL_OR_UID
    licensectl sign-in EMAIL [--password-stdin] [--api-key KEY]   prints an ID token for LICENSECTL_TOKEN
    licensectl create-user EMAIL [--password-stdin] [--email-verified]
        [--project P (LICENSECTL_PROJECT)] [--auth-emulator HOST:PORT]; default: the dev stack's emulator
Cloud Scheduler:
    licensectl sweep status|run|pause|resume [--job NAME | --project P --location R --environment E]
Every command takes --json; report, report-users and tenant-report also --csv.

Where the admin function is: --base-url / LICENSECTL_BASE_URL, any of
    https://europe-west1-P.cloudfunctions.net/staging-{name}   a template: {name} becomes `admin`
                                                  (Terraform's output `function_url_template`)
    https://europe-west1-P.cloudfunctions.net/staging-admin    the admin function itself (also a
        https://staging-admin-<hash>-ew.a.run.app             run.app URL, or any URL whose last
                                                  path segment is `admin` or ends in `-admin`)
    http://127.0.0.1:8080                         a base URL serving every function at /<name>
                                                  (the dev stack): <base>/admin/...
else the running dev stack (<state dir>/stack.json). Who: --token / LICENSECTL_TOKEN (a
Firebase ID token of an account with role admin or owner), else, for the dev stack only,
a local owner token. Errors: the server's error code and message on stderr, exit 1; a bad
command line exits 2; an admin function that cannot be reached, 3.
"""

from __future__ import annotations

import argparse
import os
import sys

from cli import account_roles, admin_commands, anomaly_commands, sign_in, sweep_control, webhook_commands
from cli.admin_views import inert as _inert  # noqa: F401 - the name tests and older callers import
from cli.errors import CliError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="licensectl", description=(__doc__ or "").split("\n")[0],
                                     epilog="Run `licensectl COMMAND --help` for a command's options; the module "
                                            "docstring of scripts/cli/licensectl.py has the whole usage.")
    parser.add_argument("--base-url", default=os.environ.get("LICENSECTL_BASE_URL") or None,
                        help="the admin function: a template with {name}, its own URL, or a base URL "
                             "(LICENSECTL_BASE_URL; default: the running dev stack)")
    parser.add_argument("--token", default=os.environ.get("LICENSECTL_TOKEN") or None,
                        help="a Firebase ID token with role admin or owner (LICENSECTL_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        # also after the command (SUPPRESS: given before it, they are not overwritten here)
        sub.add_argument("--base-url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("--token", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return sub

    admin_commands.add_commands(command)
    webhook_commands.add_commands(command)
    anomaly_commands.add_commands(command)
    account_roles.add_commands(command)
    sign_in.add_command(command)
    sweep_control.add_arguments(command("sweep", "the sweep's Cloud Scheduler job: status, run now, pause, resume"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # a bad command line: argparse's message and exit 2
    try:
        if args.command == "sweep":  # Cloud Scheduler's API, not the admin function
            return sweep_control.run(args)
        if args.command in account_roles.COMMANDS:  # Firebase Auth, not the admin function
            return account_roles.run(args)
        if args.command == sign_in.COMMAND:  # Firebase Auth's REST sign-in
            return sign_in.run(args)
        if args.command in webhook_commands.COMMANDS:  # the admin function's webhooks routes
            return webhook_commands.run(args)
        if args.command in anomaly_commands.COMMANDS:  # the admin function's anomalies routes
            return anomaly_commands.run(args)
        return admin_commands.run(args)
    except CliError as exc:
        print(f"licensectl: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("licensectl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `licensectl events | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 1
    except Exception as exc:  # noqa: BLE001 - an operator gets a sentence, not a traceback
        if os.environ.get("LICENSECTL_DEBUG"):
            raise
        print(f"licensectl: {args.command} failed: {type(exc).__name__}: {exc} "
              "(LICENSECTL_DEBUG=1 shows where)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
