"""licensectl's human output of the admin function's answers (--json prints them as they are).

Everything shown passes through `inert` first: tenant names, hostnames and hardware ids
come from users, and a terminal would obey an escape sequence (or a newline would forge
a line) hidden in one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def inert(value: Any) -> Any:
    """The value with every control character in its strings shown as an escape."""
    if isinstance(value, str):
        return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), value)
    if isinstance(value, list):
        return [inert(v) for v in value]
    if isinstance(value, dict):
        return {inert(k): inert(v) for k, v in value.items()}
    return value


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in (headers, *rows))


def when(value: Any, *, never: str = "never") -> str:
    """An RFC 3339 time of the API, without its milliseconds when they are zero."""
    if not value:
        return never
    return str(value).replace(".000Z", "Z")


def _ended(expires_at: Any, now: datetime) -> bool:
    try:
        return bool(expires_at) and datetime.fromisoformat(str(expires_at)) <= now
    except ValueError:
        return False


def license_state(lic: dict[str, Any], now: datetime | None = None) -> str:
    """active, suspended, revoked or expired (what stops a seat first, a revocation being final)."""
    if lic.get("revoked_at"):
        return "revoked"
    if _ended(lic.get("expires_at"), now or datetime.now(UTC)):
        return "expired"
    return "suspended" if lic.get("suspended") else "active"


def _seats(seats: Any) -> str:
    return f"{seats['used']}/{seats['max']}" if isinstance(seats, dict) else "?"


def _more(answer: dict[str, Any], shown: int, limit: int | None) -> str:
    after = answer.get("next_after")
    return f"\n(more: --after {after}, or --all)" if after and limit is not None and shown >= limit else ""


def licenses(answer: dict[str, Any], limit: int | None) -> str:
    rows = [[lic["id"], lic["tenant"], license_state(lic), _seats(lic.get("seats")), lic["tier"],
             when(lic.get("expires_at"))] for lic in answer["licenses"]]
    if not rows:
        return "(no licenses)"
    return table(["LICENSE", "TENANT", "STATE", "SEATS", "TIER", "EXPIRES"], rows) + _more(answer, len(rows), limit)


def tenants(answer: dict[str, Any], limit: int | None) -> str:
    rows = [[t["id"], t["name"], when(t.get("created_at"))] for t in answer["tenants"]]
    if not rows:
        return "(no tenants)"
    return table(["TENANT", "NAME", "CREATED"], rows) + _more(answer, len(rows), limit)


def license_detail(answer: dict[str, Any]) -> str:
    lic, seats = answer["license"], answer.get("seats")
    state = license_state(lic)
    if state == "suspended" and lic.get("suspended_by"):
        state += f" (by {lic['suspended_by']}{': only the owner resumes it' if lic['suspended_by'] == 'owner' else ''})"
    if lic.get("suspended") and state in ("expired", "revoked"):
        state += ", suspended"
    rows = [
        ("license", lic["id"]),
        ("tenant", lic["tenant"]),
        ("state", state),
        ("seats", f"{seats['used']} of {seats['max']} in use" if isinstance(seats, dict) else f"{lic['max_seats']}"),
        ("tier", lic["tier"]),
        ("features", ", ".join(lic["features"]) or "(none)"),
        ("expires", when(lic.get("expires_at"))),
        ("allowed domains", ", ".join(lic["allowed_domains"]) or "(any)"),
        ("lease ttl", f"{lic['lease_ttl_s']} s"),
        ("heartbeat every", f"{lic['heartbeat_interval_s']} s"),
        ("revive window", f"{lic['revive_window_s']} s"),
        ("sessions per user", str(lic["max_sessions_per_user"] or "no limit")),
        ("offline grace", f"{lic['offline_grace_s']} s"),
        ("max borrow", f"{lic['max_borrow_s']} s" if lic["max_borrow_s"] else "no borrowing"),
        ("created", when(lic.get("created_at"))),
        ("updated", when(lic.get("updated_at"))),
    ]
    if lic.get("revoked_at"):
        rows.append(("revoked", when(lic["revoked_at"])))
    text = "\n".join(f"{name:<18} {value}" for name, value in rows)
    return f"{text}\n\n{answer['notice']}" if answer.get("notice") else text


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value or '""'
    return json.dumps(value, ensure_ascii=False)


def _event_details(details: Any) -> list[str]:
    if not isinstance(details, dict) or not details:
        return []
    lines = []
    changes = details.get("changes")
    if isinstance(changes, dict):
        for name, change in changes.items():
            if isinstance(change, dict) and {"before", "after"} <= change.keys():
                lines.append(f"    {name}: {_value(change['before'])} -> {_value(change['after'])}")
            else:
                lines.append(f"    {name}: {_value(change)}")
    after = details.get("after")
    if isinstance(after, dict) and "before" not in details:  # a creation: what it was made with
        lines += [f"    {name}: {_value(value)}" for name, value in after.items()]
    rest = {k: v for k, v in details.items() if k not in ("changes", "after")}
    if rest:
        lines.append("    " + ", ".join(f"{name}={_value(value)}" for name, value in rest.items()))
    return lines


def events(answer: dict[str, Any]) -> str:
    lines = []
    for e in answer["events"]:
        lines.append("  ".join(part for part in (when(e["at"]), f"{e['type']:<15}", f"{e['actor']:<20}",
                                                 e.get("license") or f"tenant {e.get('tenant')}",
                                                 e.get("session") or "") if part).rstrip())
        lines += _event_details(e.get("details"))
    return "\n".join(lines) or "(no events)"


def holders(answer: dict[str, Any]) -> str:
    rows = [f"{s['session_id']}  {s['uid']:<20} {s['hardware_id']:<20} {s['state']:<8} since {when(s['since'])}  "
            f"{'counted until' if s['state'] == 'held' else 'until'} {when(s['expires_at'])}"
            for s in answer["sessions"]]
    return "\n".join([f"{answer['seats']['used']} of {answer['seats']['max']} seats in use", *rows])


def force_release(answer: dict[str, Any]) -> str:
    done = f"session {answer.get('session_id', '')} {answer['status'].replace('_', ' ')}".replace("  ", " ")
    return f"{done}\n{answer['notice']}" if answer.get("notice") else done


def usage(answer: dict[str, Any]) -> str:
    rows = [f"{d['date']}  peak {d['peak']:>5}  denials {d['denials']:>5}" for d in answer["days"]]
    return "\n".join([f"now: {answer['seats']['used']} of {answer['seats']['max']} seats", *rows])


def created_license(answer: dict[str, Any]) -> str:
    lic = answer["license"]
    return (f"license {lic['id']} for tenant {lic['tenant']} ({lic['max_seats']} seats, tier {lic['tier']})\n\n"
            f"  license key: {answer['license_key']}\n\n"
            "The key is shown only now; it is stored hashed and cannot be recovered.")


def revoked(answer: dict[str, Any]) -> str:
    lic = answer["license"]
    head = (f"license {lic['id']} revoked" if answer["status"] == "revoked"
            else f"license {lic['id']} was already revoked")
    return (f"{head} (at {when(lic.get('revoked_at'))}); sessions ended now: {answer.get('sessions_ended', 0)}\n"
            "Its key opens nothing any more and no lease token is signed for it again.")
