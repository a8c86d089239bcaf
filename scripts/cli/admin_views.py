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

from shared.domain.policies import SeatPolicy

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


def _ci_seats(lic: dict[str, Any], in_use: Any) -> str:
    """The CI pool: machine keys' seats beside max_seats."""
    pool = lic.get("ci_seats") or 0
    if isinstance(in_use, dict):
        return f"{in_use['used']} of {in_use['max']} in use (machine keys)"
    return f"{pool} (machine keys)" if pool else "none (machine keys hold ordinary seats)"


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
        ("seat policy", policy_summary(lic)),
        ("ci seats", _ci_seats(lic, answer.get("ci_seats"))),
        ("support", lic.get("support_contact") or "(none)"),
        ("created", when(lic.get("created_at"))),
        ("updated", when(lic.get("updated_at"))),
    ]
    if lic.get("revoked_at"):
        rows.append(("revoked", when(lic["revoked_at"])))
    text = "\n".join(f"{name:<18} {value}" for name, value in rows)
    return f"{text}\n\n{answer['notice']}" if answer.get("notice") else text


# -- seat policies ----------------------------------------------------------------------------
_LISTED = 10  # items of a list shown before "(+N more)"; --json has them all


def _plural(n: int, one: str) -> str:
    return f"{n} {one}{'' if n == 1 else 's'}"


def _listed(items: Sequence[Any]) -> str:
    shown = ", ".join(str(i) for i in items[:_LISTED])
    return shown + (f" (+{len(items) - _LISTED} more; --json shows all)" if len(items) > _LISTED else "")


def _overdraft(policy: dict[str, Any], max_seats: int) -> str | None:
    """The overdraft with the seats it grants now (a ratio follows max_seats)."""
    extra = SeatPolicy.from_json(policy).overdraft(max_seats)
    if policy.get("overdraft_ratio") is None and not policy.get("overdraft_seats"):
        return None
    form = f"ratio {policy['overdraft_ratio']:g}x: " if policy.get("overdraft_ratio") is not None else ""
    return (f"{form}{_plural(extra, 'seat')} beyond max_seats {max_seats} ({max_seats + extra} in all), "
            "each marked overage")


def _rule_parts(rule: Any) -> list[str]:
    if not isinstance(rule, dict):
        return []
    return [f"{name} {_listed(rule[name])}" for name in ("groups", "users", "hardware") if rule.get(name)]


def _members(group: dict[str, Any]) -> str:
    parts = [f"{name} {_listed(group[name])}" for name in ("uids", "domains") if group.get(name)]
    claim = group.get("claim")
    if isinstance(claim, dict):
        parts.append(f"claim {claim.get('name')} = {claim.get('value')}")
    return "; ".join(parts) or "(no members)"


def policy_summary(lic: dict[str, Any]) -> str:
    """One line: what the license's seat policy does (`licensectl license`)."""
    policy = lic.get("policy") or {}
    if not policy:
        return "none (any user, any seat)"
    parts = []
    if policy.get("groups"):
        parts.append(_plural(len(policy["groups"]), "group"))
    for name in ("include", "exclude"):
        rule = policy.get(name) or {}
        counted = [_plural(len(rule[k]), one) for k, one in (("groups", "group"), ("users", "user"),
                                                              ("hardware", "machine")) if rule.get(k)]
        if counted:
            parts.append(f"{name} {', '.join(counted)}")
    for name in ("reserve", "max"):
        if policy.get(name):
            parts.append(f"{name} " + ", ".join(f"{i['group']} {i['seats']}" for i in policy[name]))
    if policy.get("overdraft_ratio") is not None or policy.get("overdraft_seats"):
        extra = SeatPolicy.from_json(policy).overdraft(lic["max_seats"])
        ratio = policy.get("overdraft_ratio")
        parts.append(f"overdraft +{extra}" + (f" (ratio {ratio:g}x)" if ratio is not None else ""))
    return "; ".join(parts)


def policy(answer: dict[str, Any]) -> str:
    """The seat policy of a license answer (GET or PATCH licenses/{id}), readably."""
    lic = answer["license"]
    policy = lic.get("policy") or {}
    head = f"seat policy of {lic['id']} ({_plural(lic['max_seats'], 'seat')})"
    if not policy:
        return f"{head}: none: any user may hold any of its seats (`licensectl set-policy` sets one)"
    rows: list[tuple[str, str]] = []
    groups = policy.get("groups") or []
    if groups:
        rows.append(("groups", ""))
        width = max(len(str(g["name"])) for g in groups)
        rows += [(f"  {str(g['name']):<{width}}", _members(g)) for g in groups]
    for name, meaning in (("include", "only these may hold a seat"), ("exclude", "never hold a seat")):
        parts = _rule_parts(policy.get(name))
        if parts:
            rows.append((name, "; ".join(parts) + f"  ({meaning})"))
    for name, how, meaning in (("reserve", "", "held for the group's members: nobody else takes them, even idle"),
                               ("max", "at most ", "the group's members together")):
        for i, item in enumerate(policy.get(name) or []):
            rows.append((name if i == 0 else "", f"{item['group']}: {how}{_plural(item['seats'], 'seat')}"
                                                 + (f"  ({meaning})" if i == 0 else "")))
    rows.append(("overdraft", _overdraft(policy, lic["max_seats"]) or "none"))
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}".rstrip() for label, value in rows]
    return "\n".join([head, *lines])


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
            + ("  (CI seat)" if s.get("ci") else "")
            for s in answer["sessions"]]
    head = f"{answer['seats']['used']} of {answer['seats']['max']} seats in use"
    if isinstance(answer.get("ci_seats"), dict):
        head += f"; CI seats {answer['ci_seats']['used']} of {answer['ci_seats']['max']}"
    return "\n".join([head, *rows])


def queue(answer: dict[str, Any]) -> str:
    tickets = answer["tickets"]
    if answer.get("queue") is None and not tickets:
        return f"license {answer['license']} has no wait queue (its seat policy's `queue` turns one on)"
    rows = [[str(t["position"]), t["ticket"], t["uid"], t["hardware_id"], ",".join(t["groups"]) or "-",
             when(t["since"]), f"held until {when(t['held_until'])}" if t.get("held_until") else "waiting"]
            for t in tickets]
    if not rows:
        return f"nobody waits for a seat of {answer['license']}"
    return table(["#", "TICKET", "UID", "HARDWARE", "GROUPS", "SINCE", "SEAT"], rows)


def removed_ticket(answer: dict[str, Any]) -> str:
    if answer["status"] == "removed":
        return (f"ticket {answer['ticket']} of {answer['uid']} on {answer['hardware_id']} removed from the queue; "
                "its next poll is refused")
    return f"ticket {answer['ticket']} is not in the queue (served, lapsed or removed already)"


def _key_row(key: dict[str, Any]) -> list[str]:
    return [key["id"], key["name"], key["tenant"], key["mode"], _listed(key["licenses"]),
            when(key.get("last_used_at")), f"revoked {when(key['revoked_at'])}" if key.get("revoked_at") else "active"]


def machine_keys(answer: dict[str, Any], limit: int | None) -> str:
    rows = [_key_row(key) for key in answer["keys"]]
    if not rows:
        return "(no machine keys)"
    return (table(["KEY", "NAME", "TENANT", "MODE", "LICENSES", "LAST USED", "STATE"], rows)
            + _more(answer, len(rows), limit))


def created_key(answer: dict[str, Any]) -> str:
    key = answer["key"]
    does = ("holds seats (of the CI pool where a license has one)" if key["mode"] == "seat"
            else "validates only (holds no seat)")
    return (f"machine key {key['id']} ({key['name']}) of tenant {key['tenant']}: {does}\n"
            f"licenses: {', '.join(key['licenses'])}\n\n"
            f"  key: {answer['api_key']}\n\n"
            "The key is shown only now; it is stored hashed and cannot be recovered. Tools send it as\n"
            "`Authorization: Bearer <key>` (the SDK and coditect-license: as the ID token, e.g. CODITECT_ID_TOKEN).")


def revoked_key(answer: dict[str, Any]) -> str:
    key = answer["key"]
    head = (f"machine key {key['id']} ({key['name']}) revoked" if answer["status"] == "revoked"
            else f"machine key {key['id']} ({key['name']}) was already revoked")
    return f"{head}; sessions ended now: {answer.get('sessions_ended', 0)}\n{answer.get('notice', '')}".rstrip()


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
