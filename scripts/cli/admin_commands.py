"""licensectl's commands over the admin function: one (or more) per route of openapi.yaml's /admin/...

    POST   tenants                            create-tenant
    GET    tenants                            tenants
    POST   licenses                           create-license
    GET    licenses                           licenses   (each with its seats in use)
    GET    licenses/{id}                      license, policy
    PATCH  licenses/{id}                      update-license, suspend, resume, set-policy
    DELETE licenses/{id}                      revoke
    GET    licenses/{id}/sessions             holders
    DELETE licenses/{id}/sessions/{session}   force-release
    GET    licenses/{id}/usage                usage
    GET    licenses/{id}/report               report   (--csv of each report: ?format=csv, the server's CSV as it is)
    GET    licenses/{id}/report/users         report-users
    GET    licenses/{id}/statement            statement   (the signed JWS alone; --json: with its claims)
    GET    licenses/{id}/queue                queue
    DELETE licenses/{id}/queue/{ticket}       remove-ticket
    POST   keys                               create-key   (the machine key is printed once)
    GET    keys                               keys
    DELETE keys/{id}                          revoke-key
    GET    events                             events
    GET    report                             tenant-report
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cli import admin_views
from cli.admin_api import AdminClient, segment, target
from cli.errors import CliError, UsageError
from shared.domain.anomalies import MAX as ANOMALY_MAX
from shared.domain.anomalies import RULES as ANOMALY_RULES
from shared.domain.anomalies import WINDOW_S as ANOMALY_WINDOW_S

COMMANDS = ("create-tenant", "tenants", "create-license", "licenses", "license", "update-license", "suspend",
            "resume", "policy", "set-policy", "revoke", "holders", "force-release", "usage", "queue", "remove-ticket",
            "create-key", "keys", "revoke-key", "events", "report", "report-users", "tenant-report", "statement")
_REPORT_DAYS = 30  # a report's period without --from: the UTC days since this many days before --to
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _license_terms(sub: argparse.ArgumentParser, *, update: bool) -> None:
    """The settings of a license, as create-license and update-license take them (openapi.yaml)."""
    if update:
        sub.add_argument("--seats", type=int, metavar="N", help="concurrent seats (max_seats)")
        sub.add_argument("--tier")
    sub.add_argument("--features", default=None if update else "", metavar="A,B",
                     help="comma-separated feature names" + ("; '' for none (replaces the list)" if update else ""))
    sub.add_argument("--expires", metavar="TIME", help="RFC 3339 time the license ends"
                     + ("; `never` removes the expiry" if update else " (default: never)"))
    sub.add_argument("--lease-ttl", type=int, metavar="N", help="seconds a lease lives without a heartbeat"
                     + ("" if update else " (default 360)"))
    sub.add_argument("--heartbeat-interval", type=int, metavar="N", help="seconds between heartbeats"
                     + ("" if update else " (default 300)"))
    sub.add_argument("--allowed-domain", action="append", default=None if update else [], metavar="DOMAIN",
                     help="only verified emails of this domain (repeat for more)"
                          + ("; replaces the list" if update else ""))
    if update:
        sub.add_argument("--no-allowed-domains", action="store_true", help="remove the domain restriction")
    sub.add_argument("--revive-window", type=int, metavar="N", default=None if update else 0,
                     help="seconds a late heartbeat may still revive its lease")
    sub.add_argument("--max-borrow", type=int, metavar="N", default=None if update else 0,
                     help="longest check-out in seconds (0: no borrowing)")
    sub.add_argument("--offline-grace", type=int, metavar="N", default=None if update else 0,
                     help="seconds a lease token stays valid offline past its exp")
    sub.add_argument("--max-sessions-per-user", type=int, metavar="N", default=None if update else 0,
                     help="live sessions per user (0: no limit)")
    sub.add_argument("--ci-seats", type=int, metavar="N", default=None if update else 0,
                     help="the CI pool: seats for machine keys beside the users' (owner; 0: no pool)")
    sub.add_argument("--support-contact", metavar="TEXT",
                     help="the vendor's support line, shown in tools with every refusal (owner)")
    if update:
        sub.add_argument("--no-support-contact", action="store_true", help="remove the support line")
        sub.add_argument("--anomaly-rule", action="append", type=_anomaly_rule, metavar="RULE=MAX[/WINDOW_S]",
                         help="a conflict-detection rule: more than MAX within WINDOW_S seconds raises a flag (0: "
                              f"off; the window is kept when not given); RULE: {', '.join(ANOMALY_RULES)} (repeat "
                              "for more; the rules not named keep theirs)")


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    tenant = command("create-tenant", "create a tenant (owner)")
    tenant.add_argument("name")
    tenant.add_argument("--id", help="tenant id (default: derived from the name)")

    tenants = command("tenants", "list tenants (owner)")
    _paging(tenants)

    lic = command("create-license", "create a license and print its key once (owner: the vendor)")
    lic.add_argument("--tenant", required=True, help="the customer (tenant id) the license is sold to")
    lic.add_argument("--seats", type=int, required=True, metavar="N", help="concurrent seats (max_seats)")
    lic.add_argument("--tier", default="standard")
    _license_terms(lic, update=False)
    lic.add_argument("--policy", metavar="FILE", help="its seat policy as JSON (as set-policy takes it); - reads stdin")

    listing = command("licenses", "list licenses: state, seats in use, expiry")
    listing.add_argument("--tenant", help="only this tenant's (owner; an admin sees its own tenant's only)")
    _paging(listing)

    one = command("license", "one license, all its settings and its seats in use")
    one.add_argument("license_id")

    update = command("update-license", "change a license's settings (entitlements: owner; restrictions: admin too)")
    update.add_argument("license_id")
    _license_terms(update, update=True)

    for name, help_text in (("suspend", "suspend a license: no seat is granted or extended until resumed"),
                            ("resume", "resume a suspended license (a suspension by the owner: owner only)")):
        command(name, help_text).add_argument("license_id")

    shown = command("policy", "a license's seat policy: groups, include/exclude, reservations, maximums, "
                              "overdraft (--json: the policy itself, as set-policy takes it)")
    shown.add_argument("license_id")
    replace = command("set-policy", "replace a license's whole seat policy (its overdraft: owner only; an admin "
                                    "sends it unchanged)")
    replace.add_argument("license_id")
    source = replace.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", metavar="FILE", help="the policy as JSON (openapi.yaml SeatPolicy; `licensectl "
                                                       "policy ID --json` writes one); - reads stdin")
    source.add_argument("--reset", action="store_true", help="back to the default: any user, any seat")

    revoke = command("revoke", "revoke a license for good: its key stops working, every session ends (owner)")
    revoke.add_argument("license_id")
    revoke.add_argument("--yes", action="store_true", help="do not ask (needed when stdin is not a terminal)")

    holders = command("holders", "who holds the license's seats now")
    holders.add_argument("license_id")
    force = command("force-release", "free a seat now (its holder's next heartbeat gets 410)")
    force.add_argument("license_id")
    force.add_argument("session_id")
    usage = command("usage", "seats now, peak and denials per day")
    usage.add_argument("license_id")
    usage.add_argument("--days", type=int, default=30, metavar="N")
    queue = command("queue", "the license's wait queue, in order: who waits, since when, whose seat is held")
    queue.add_argument("license_id")
    remove = command("remove-ticket", "take a ticket out of the wait queue (its holder's next poll is refused)")
    remove.add_argument("license_id")
    remove.add_argument("ticket")

    key = command("create-key", "make a machine key for build runners and CI jobs; the key is printed once")
    key.add_argument("name", help="what it is for, e.g. \"nightly builds\"")
    key.add_argument("--license", action="append", required=True, metavar="LICENSE_ID", dest="licenses",
                     help="a license the key may use (repeat for more; all of one tenant)")
    key.add_argument("--mode", choices=("seat", "validate"), default="seat",
                     help="seat: holds seats (the CI pool where the license has one); validate: validates only")
    keys = command("keys", "machine keys: name, mode, licenses, last use (never the key)")
    keys.add_argument("--tenant", help="only this tenant's (owner; an admin sees its own tenant's only)")
    _paging(keys)
    revoke_key = command("revoke-key", "revoke a machine key: refused within 30 s everywhere, its seats freed now")
    revoke_key.add_argument("key_id")

    events = command("events", "the audit log, newest first; changes with before -> after")
    events.add_argument("--license", metavar="LICENSE_ID")
    events.add_argument("--tenant", help="only this tenant's (owner)")
    events.add_argument("--type", help="only events of this type (e.g. acquire, force-release, license.update)")
    events.add_argument("--actor", help="only events by this uid (or system)")
    events.add_argument("--from", dest="from_", metavar="TIME", help="at or after (RFC 3339, or YYYY-MM-DD)")
    events.add_argument("--to", metavar="TIME", help="before (RFC 3339, or YYYY-MM-DD)")
    events.add_argument("--after", metavar="EVENT_ID", help="the page after this event (the last one shown)")
    events.add_argument("--limit", type=int, default=50, metavar="N", help="at most N events (1-500; default 50)")

    report = command("report", "a license's seat use over a period, per hour or day: peak, p95, average, seat-hours, "
                               "time with every seat in use, denials, and the seats that would have covered the "
                               "demand")
    report.add_argument("license_id")
    _period(report)
    report.add_argument("--granularity", choices=("hour", "day"), default="day",
                        help="a row per hour or per UTC day (default)")
    report.add_argument("--csv", action="store_true", help="the rows as CSV, as the admin function writes them")
    users = command("report-users", "who held a license's seats over a period: seat-hours, sessions, last seen")
    users.add_argument("license_id")
    _period(users)
    users.add_argument("--sort", choices=("seat_hours", "sessions", "last_seen", "uid"), default="seat_hours",
                       help="the order of the users (default seat_hours)")
    users.add_argument("--order", choices=("desc", "asc"), help="default: asc by uid, else desc")
    users.add_argument("--limit", type=int, default=100, metavar="N", help="page size (default 100)")
    users.add_argument("--after", metavar="CURSOR", help="the page after this (the previous page's `next`)")
    users.add_argument("--csv", action="store_true", help="the page of users as CSV, as the admin function writes it")
    statement = command("statement", "a month's usage statement, signed (verify it offline with "
                                     "coditect-license verify-statement FILE --jwks <server>/jwks)")
    statement.add_argument("license_id")
    statement.add_argument("--month", required=True, type=_month, metavar="YYYY-MM")
    overview = command("tenant-report", "a report line per license of a tenant (an admin: its own; the owner: "
                                        "every tenant, or --tenant's) over a period, and the totals")
    overview.add_argument("--tenant", help="only this tenant's (owner)")
    _period(overview)
    overview.add_argument("--csv", action="store_true", help="the licenses as CSV, as the admin function writes it")


def _paging(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--limit", type=int, default=100, metavar="N", help="page size (1-500; default 100)")
    sub.add_argument("--after", metavar="ID", help="the page after this id (the previous page's last)")
    sub.add_argument("--all", action="store_true", help="every page")


def _period(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--from", dest="from_", type=_moment, metavar="TIME",
                     help=f"RFC 3339 with its zone, or a date YYYY-MM-DD (00:00Z) (default: 00:00Z {_REPORT_DAYS} "
                          "days before --to)")
    sub.add_argument("--to", type=_moment, metavar="TIME", help="the end, not included (default: now)")


def _month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month YYYY-MM")
    return text


def _instant(text: str) -> datetime:
    """A time of --from/--to: RFC 3339 with its zone, or a date meaning its 00:00Z (as the admin function takes it)."""
    if _DATE.fullmatch(text):
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no zone")
    return moment


def _moment(text: str) -> str:
    """--from/--to as typed (the admin function reads them), once they read as a time."""
    try:
        _instant(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a date YYYY-MM-DD nor an RFC 3339 time with its zone "
                                         "(e.g. 2026-11-01T00:00:00Z)") from None
    return text


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _report_request(args: argparse.Namespace, now: datetime | None = None) -> tuple[str, dict[str, str]]:
    """The route and query of report, report-users or tenant-report (their --csv asks the same)."""
    end = args.to or _stamp(now or datetime.now(UTC))
    start = args.from_ or _stamp(datetime.combine(_instant(end).astimezone(UTC).date()
                                                  - timedelta(days=_REPORT_DAYS), datetime.min.time(), UTC))
    if _instant(start) >= _instant(end):
        raise UsageError(f"{args.command}: --from {start} is not before --to {end}")
    query = {"from": start, "to": end}
    match args.command:
        case "report":
            return f"licenses/{segment(args.license_id)}/report", {**query, "granularity": args.granularity}
        case "report-users":
            query.update(sort=args.sort, order=args.order or ("asc" if args.sort == "uid" else "desc"),
                         limit=str(args.limit), **({"after": args.after} if args.after else {}))
            return f"licenses/{segment(args.license_id)}/report/users", query
        case "tenant-report":
            return "report", {**query, **({"tenant": args.tenant} if args.tenant else {})}
    raise AssertionError(args.command)


def _csv(client: AdminClient, args: argparse.Namespace) -> str:
    """The CSV of a report command: the admin function's own, as it is."""
    path, query = _report_request(args)
    return client.call_text(path, query={**query, "format": "csv"})


def _anomaly_rule(text: str) -> tuple[str, dict[str, int]]:
    """--anomaly-rule RULE=MAX[/WINDOW_S]: (the rule, its change as the API takes it)."""
    name, equals, value = text.partition("=")
    name = name.strip()
    if name not in ANOMALY_RULES:
        raise argparse.ArgumentTypeError(f"{name!r} is not a rule; the rules: {', '.join(ANOMALY_RULES)} "
                                         "(as RULE=MAX or RULE=MAX/WINDOW_S, e.g. grants_per_user=10/600)")
    limit, slash, window = value.partition("/")
    try:
        change = {"max": int(limit)} if equals else {}
        if slash:
            change["window_s"] = int(window)
    except ValueError:
        change = {}
    if not change:
        raise argparse.ArgumentTypeError(f"{text!r}: give {name}=MAX or {name}=MAX/WINDOW_S, whole numbers "
                                         "(e.g. grants_per_user=10/600; hardware_per_user=0 switches it off)")
    if not ANOMALY_MAX[0] <= change["max"] <= ANOMALY_MAX[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: MAX is {ANOMALY_MAX[0]} (off) to {ANOMALY_MAX[1]}")
    if "window_s" in change and not ANOMALY_WINDOW_S[0] <= change["window_s"] <= ANOMALY_WINDOW_S[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: WINDOW_S is {ANOMALY_WINDOW_S[0]} to {ANOMALY_WINDOW_S[1]} "
                                         "seconds (7 days)")
    return name, change


def _anomaly_rules(given: list[tuple[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    rules: dict[str, dict[str, int]] = {}
    for name, change in given:
        if name in rules:
            raise UsageError(f"--anomaly-rule {name} is given twice; name each rule once")
        rules[name] = change
    return rules


def _features(text: str) -> list[str]:
    return [f.strip() for f in text.split(",") if f.strip()]


def _terms(args: argparse.Namespace) -> dict[str, Any]:
    """The license settings given on the command line, by their API names."""
    named = {"max_seats": "seats", "tier": "tier", "lease_ttl_s": "lease_ttl",
             "heartbeat_interval_s": "heartbeat_interval", "revive_window_s": "revive_window",
             "max_borrow_s": "max_borrow", "offline_grace_s": "offline_grace",
             "max_sessions_per_user": "max_sessions_per_user", "ci_seats": "ci_seats",
             "support_contact": "support_contact"}
    body = {field: getattr(args, option) for field, option in named.items() if getattr(args, option, None) is not None}
    if getattr(args, "no_support_contact", False):
        if args.support_contact is not None:
            raise UsageError("--support-contact and --no-support-contact contradict each other")
        body["support_contact"] = None
    if args.features is not None:
        body["features"] = _features(args.features)
    if args.expires is not None:
        body["expires_at"] = None if args.expires.strip().lower() == "never" else args.expires
    if getattr(args, "no_allowed_domains", False):
        if args.allowed_domain:
            raise UsageError("--allowed-domain and --no-allowed-domains contradict each other")
        body["allowed_domains"] = []
    elif args.allowed_domain is not None:
        body["allowed_domains"] = args.allowed_domain
    if getattr(args, "anomaly_rule", None):
        body["anomaly_rules"] = _anomaly_rules(args.anomaly_rule)
    return body


def _policy_file(name: str, command: str) -> Any:
    """The policy a file holds (a JSON object, or null): a file that is not one is a usage error."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{command}: cannot read {name}: {exc}") from None
    try:
        policy = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{command}: {'stdin' if name == '-' else name} is not JSON: {exc}") from None
    if policy is not None and not isinstance(policy, dict):
        raise UsageError(f"{command}: the policy must be a JSON object (groups, include, exclude, reserve, max, "
                         f"overdraft_seats or overdraft_ratio), not {type(policy).__name__}")
    return policy


def _pages(client: AdminClient, path: str, items: str, query: dict[str, str], args: argparse.Namespace
           ) -> dict[str, Any]:
    query = {**query, "limit": str(args.limit), **({"after": args.after} if args.after else {})}
    answer = client.call("GET", path, query=query)
    collected = list(answer[items])
    while args.all and answer.get("next_after") and len(answer[items]) >= args.limit:
        answer = client.call("GET", path, query={**query, "after": answer["next_after"]})
        collected += answer[items]
    return {items: collected, "next_after": None if args.all else answer.get("next_after")}


def _confirm_revoke(client: AdminClient, license_id: str) -> None:
    if not sys.stdin.isatty():
        raise UsageError(f"revoke {license_id}: stdin is not a terminal to ask on; pass --yes to revoke")
    current = admin_views.inert(client.call("GET", f"licenses/{segment(license_id)}"))
    lic, seats = current["license"], current["seats"]
    print(f"Revoke license {lic['id']} of tenant {lic['tenant']} ({seats['used']} of {seats['max']} seats in use)?\n"
          "Its key stops working, every session ends now, and this cannot be undone. [y/N] ",
          end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise CliError("not revoked")


def run(args: argparse.Namespace) -> int:
    csv = getattr(args, "csv", False)
    if csv and args.json:
        raise UsageError(f"{args.command}: --csv or --json, not both")
    url, token = target(args.base_url, args.token)
    with AdminClient(url, token, inert=admin_views.inert) as client:
        if csv:  # as the server sent it (or, as --json, the values as they are): for tools, not a terminal
            sys.stdout.write(_csv(client, args))
            return 0
        answer, text = _perform(client, args)
    # JSON escapes control characters itself; the human form shows them inert.
    print(json.dumps(answer, indent=2) if args.json else text(admin_views.inert(answer)))
    return 0


def _perform(client: AdminClient, args: argparse.Namespace
             ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    """The answer to print, and how it reads to a person."""
    command = args.command
    lic_path = f"licenses/{segment(args.license_id)}" if hasattr(args, "license_id") else ""
    match command:
        case "create-tenant":
            answer = client.call("POST", "tenants", body={"name": args.name, **({"id": args.id} if args.id else {})})
            return answer, lambda a: f"tenant {a['id']} ({a['name']}) created"
        case "tenants":
            return _pages(client, "tenants", "tenants", {}, args), lambda a: admin_views.tenants(a, args.limit)
        case "create-license":
            body = {"tenant": args.tenant, "max_seats": args.seats, "tier": args.tier,
                    "features": [], "allowed_domains": [], **_terms(args)}
            if args.policy is not None:
                body["policy"] = _policy_file(args.policy, command)
            return client.call("POST", "licenses", body=body), admin_views.created_license
        case "licenses":
            page = _pages(client, "licenses", "licenses", {"tenant": args.tenant} if args.tenant else {}, args)
            limit = None if args.all else args.limit
            return page, lambda a: admin_views.licenses(a, limit)
        case "license":
            return client.call("GET", lic_path), admin_views.license_detail
        case "update-license":
            body = _terms(args)
            if not body:
                raise UsageError("update-license: nothing to change; name one or more settings (see "
                                 "`licensectl update-license --help`)")
            answer = client.call("PATCH", lic_path, body=body)
            return answer, lambda a: (f"license {a['license']['id']} updated ({', '.join(sorted(body))})\n\n"
                                      + admin_views.license_detail(a))
        case "suspend" | "resume":
            answer = client.call("PATCH", lic_path, body={"suspended": command == "suspend"})

            def suspension(a: dict[str, Any]) -> str:
                lic = a["license"]
                if lic["suspended"]:
                    return (f"license {lic['id']} is suspended (by {lic['suspended_by']}): no seat is granted or "
                            "extended until it is resumed")
                return f"license {lic['id']} is resumed: its state is {admin_views.license_state(lic)}"

            return answer, suspension
        case "policy":
            answer = client.call("GET", lic_path)
            if args.json:  # the policy itself: edit it and give it back to set-policy
                return answer["license"].get("policy") or {}, lambda a: json.dumps(a, indent=2)
            return answer, admin_views.policy
        case "set-policy":
            body = {"policy": None if args.reset else _policy_file(args.file, command)}
            answer = client.call("PATCH", lic_path, body=body)
            return answer, lambda a: (f"license {a['license']['id']}: seat policy "
                                      f"{'reset' if args.reset else 'replaced'}\n\n" + admin_views.policy(a))
        case "revoke":
            if not args.yes:
                _confirm_revoke(client, args.license_id)
            return client.call("DELETE", lic_path), admin_views.revoked
        case "holders":
            return client.call("GET", f"{lic_path}/sessions"), admin_views.holders
        case "force-release":
            answer = client.call("DELETE", f"{lic_path}/sessions/{segment(args.session_id)}")
            return answer, admin_views.force_release
        case "usage":
            return client.call("GET", f"{lic_path}/usage", query={"days": str(args.days)}), admin_views.usage
        case "statement":
            answer = client.call("GET", f"{lic_path}/statement", query={"month": args.month})
            return answer, lambda a: a["statement"]
        case "queue":
            return client.call("GET", f"{lic_path}/queue"), admin_views.queue
        case "remove-ticket":
            return client.call("DELETE", f"{lic_path}/queue/{segment(args.ticket)}"), admin_views.removed_ticket
        case "create-key":
            body = {"name": args.name, "licenses": args.licenses, "mode": args.mode}
            return client.call("POST", "keys", body=body), admin_views.created_key
        case "keys":
            page = _pages(client, "keys", "keys", {"tenant": args.tenant} if args.tenant else {}, args)
            return page, lambda a: admin_views.machine_keys(a, None if args.all else args.limit)
        case "revoke-key":
            return client.call("DELETE", f"keys/{segment(args.key_id)}"), admin_views.revoked_key
        case "events":
            query = {"limit": str(args.limit)}
            query.update({k: v for k, v in (("license", args.license), ("tenant", args.tenant), ("type", args.type),
                                            ("actor", args.actor), ("from", args.from_), ("to", args.to),
                                            ("after", args.after)) if v})
            return client.call("GET", "events", query=query), admin_views.events
        case "report" | "report-users" | "tenant-report":
            path, query = _report_request(args)
            views = {"report": admin_views.report, "report-users": admin_views.report_users,
                     "tenant-report": admin_views.tenant_report}
            return client.call("GET", path, query=query), views[command]
    raise AssertionError(command)
