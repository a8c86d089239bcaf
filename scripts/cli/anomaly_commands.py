"""licensectl's commands for conflict flags (openapi.yaml /admin/anomalies...), and their views.

    GET    anomalies                          anomalies                (a tenant's, or every tenant's: owner)
    GET    licenses/{id}/anomalies            anomalies --license ID
    POST   anomalies/{flag_id}/acknowledge    acknowledge-anomaly

There is no route for one flag: `anomalies --json` has each with all its evidence. A license's
thresholds are set with `update-license --anomaly-rule RULE=MAX[/WINDOW_S]` (admin_commands)
and shown by `license` (admin_views.anomaly_rules_summary).

A flag is raised by the sweep (shared/domain/anomalies.py): one per license, rule and
subject (a uid, a hardware id or a session id). Acknowledged, it is raised again only if its
count grows past what was acknowledged. Every text the server gives (a subject, a hardware
id, a note) is shown through admin_views.inert.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from cli import admin_views
from cli.admin_api import AdminClient, segment, target
from cli.admin_commands import _pages
from cli.errors import UsageError

COMMANDS = ("anomalies", "acknowledge-anomaly")
_SUBJECT_COLUMNS, _WHO_COLUMNS = 40, 32  # longer subjects (hardware ids) and names are clipped in the table


def _page_size(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= number <= 500:
        raise argparse.ArgumentTypeError(f"{number}: a page is 1 to 500 flags")
    return number


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    listing = command("anomalies", "conflict flags (key sharing, seat cycling): rule, subject, count over the "
                                   "threshold in its window, last seen, open or acknowledged")
    listing.add_argument("--license", metavar="LICENSE_ID", help="only this license's")
    listing.add_argument("--tenant", help="only this tenant's (owner; an admin sees its own tenant's only)")
    listing.add_argument("--state", choices=("open", "acknowledged"), help="only the open or the acknowledged ones "
                                                                           "(default: both)")
    listing.add_argument("--limit", type=_page_size, default=100, metavar="N", help="page size (1-500; default 100)")
    listing.add_argument("--after", metavar="FLAG_ID", help="the page after this flag (the previous page's last)")
    listing.add_argument("--all", action="store_true", help="every page")

    ack = command("acknowledge-anomaly", "acknowledge a conflict flag: it is raised again only if its count grows "
                                         "past the one acknowledged now")
    ack.add_argument("flag_id", help="a flag's id (`licensectl anomalies` lists them)")
    ack.add_argument("--note", metavar="TEXT", help="what was found or done, for the audit log (1-500 characters)")


def run(args: argparse.Namespace) -> int:
    if args.command == "anomalies" and args.license and args.tenant:
        raise UsageError("anomalies: --license or --tenant, not both (a license's flags are its tenant's)")
    url, token = target(args.base_url, args.token)
    with AdminClient(url, token, inert=admin_views.inert) as client:
        answer, text = _perform(client, args)
    # JSON escapes control characters itself; the human form shows them inert.
    print(json.dumps(answer, indent=2) if args.json else text(admin_views.inert(answer)))
    return 0


def _perform(client: AdminClient, args: argparse.Namespace
             ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    """The answer to print, and how it reads to a person."""
    match args.command:
        case "anomalies":
            query = {"state": args.state} if args.state else {}
            if args.license:
                path = f"licenses/{segment(args.license)}/anomalies"
            else:
                path = "anomalies"
                query.update({"tenant": args.tenant} if args.tenant else {})
            page = _pages(client, path, "anomalies", query, args)
            return page, lambda a: anomalies(a, None if args.all else args.limit, state=args.state)
        case "acknowledge-anomaly":
            body = {"note": args.note} if args.note is not None else {}
            answer = client.call("POST", f"anomalies/{segment(args.flag_id)}/acknowledge", body=body)
            return answer, acknowledged
    raise AssertionError(args.command)


# -- views ------------------------------------------------------------------------------------
def subject(flag: dict[str, Any]) -> str:
    """The uid, hardware id or session id counted by; a session's with its user."""
    text = str(flag.get("subject"))
    return f"{text} (uid {flag['uid']})" if flag.get("uid") else text


def over(evidence: dict[str, Any]) -> str:
    """The count against the threshold in the rule's window: `5 > 3 in 24h`."""
    return f"{evidence.get('count')} > {evidence.get('threshold')} in {admin_views.window(evidence.get('window_s'))}"


def flag_state(flag: dict[str, Any]) -> str:
    """open (raised again: how often), or acknowledged by whom."""
    acked = flag.get("acknowledged")
    if flag.get("state") == "acknowledged" and isinstance(acked, dict):
        return f"acknowledged by {acked.get('by')}"
    times = flag.get("times_raised") or 1
    return str(flag.get("state")) + (f" (raised {times} times)" if times > 1 else "")


def anomalies(answer: dict[str, Any], limit: int | None, *, state: str | None = None) -> str:
    flags = answer["anomalies"]
    if not flags:
        return f"(no {state + ' ' if state else ''}anomalies)"
    rows = [[f["id"], f["license"], f["rule"], admin_views.clip(subject(f), _SUBJECT_COLUMNS), over(f["evidence"]),
             admin_views.when(f["evidence"].get("last_seen")), admin_views.clip(flag_state(f), _WHO_COLUMNS)]
            for f in flags]
    more = ""
    if answer.get("next_after") and limit is not None and len(rows) >= limit:
        more = f"\n(more: --after {answer['next_after']}, or --all)"
    return admin_views.table(["FLAG", "LICENSE", "RULE", "SUBJECT", "COUNT", "LAST SEEN", "STATE"], rows) + more


def flag_detail(flag: dict[str, Any]) -> str:
    evidence = flag["evidence"]
    examples = evidence.get("examples") or []
    rows = [("flag", flag["id"]),
            ("tenant", flag["tenant"]),
            ("license", flag["license"]),
            ("rule", flag["rule"]),
            ("subject", subject(flag)),
            ("count", over(evidence)),
            ("seen", f"{admin_views.when(evidence.get('first_seen'))} to "
                     f"{admin_views.when(evidence.get('last_seen'))}"),
            ("examples", ", ".join(str(e) for e in examples) or "(none)"),
            ("detected", admin_views.when(flag.get("detected_at"))),
            ("times raised", str(flag.get("times_raised"))),
            ("state", flag_state(flag))]
    acked = flag.get("acknowledged")
    if isinstance(acked, dict):
        rows.append(("acknowledged", f"{admin_views.when(acked.get('at'))} by {acked.get('by')}, "
                                     f"at count {acked.get('count')}"))
        rows.append(("note", acked.get("note") or "(none)"))
    return "\n".join(f"{name:<13} {value}" for name, value in rows)


def acknowledged(answer: dict[str, Any]) -> str:
    flag = answer["anomaly"]
    acked = flag.get("acknowledged") or {}
    count = acked.get("count", flag["evidence"].get("count"))
    return (f"anomaly {flag['id']} acknowledged\n\n{flag_detail(flag)}\n\n"
            f"It is raised again only if its count grows past {count} (a new anomaly.detected event then).")
