"""licensectl's human output of the admin function's answers (--json prints them as they are).

Everything shown passes through `inert` first: tenant names, hostnames and hardware ids
come from users, and a terminal would obey an escape sequence (or a newline would forge
a line) hidden in one.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Container, Sequence
from datetime import UTC, date, datetime, timedelta
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


def _char_width(char: str) -> int:
    """Terminal columns of one character: 2 for East Asian wide, 0 for combining and format ones."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Cf", "Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def text_width(text: str) -> int:
    """Terminal columns of a text (what lines a table up, rather than its length)."""
    return sum(_char_width(char) for char in text)


def clip(value: Any, columns: int) -> str:
    """The text in at most `columns` terminal columns: a longer one is cut and ends in an ellipsis."""
    text = str(value)
    if text_width(text) <= columns:
        return text
    kept, used = [], 0
    for char in text:
        used += _char_width(char)
        if used > columns - 1:
            break
        kept.append(char)
    return "".join(kept) + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Container[int] = ()) -> str:
    """Columns two spaces apart; those numbered in `right` (from 0) aligned right, as numbers are."""
    widths = [max(text_width(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]

    def padded(i: int, cell: Any, width: int) -> str:
        gap = " " * (width - text_width(str(cell)))
        return f"{gap}{cell}" if i in right else f"{cell}{gap}"

    return "\n".join("  ".join(padded(i, cell, width) for i, (cell, width) in enumerate(zip(row, widths, strict=True))
                               ).rstrip()
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
        ("anomaly rules", anomaly_rules_summary(lic.get("anomaly_rules"))),
        ("ci seats", _ci_seats(lic, answer.get("ci_seats"))),
        ("support", lic.get("support_contact") or "(none)"),
        ("created", when(lic.get("created_at"))),
        ("updated", when(lic.get("updated_at"))),
    ]
    if lic.get("revoked_at"):
        rows.append(("revoked", when(lic["revoked_at"])))
    text = "\n".join(f"{name:<18} {value}" for name, value in rows)
    return f"{text}\n\n{answer['notice']}" if answer.get("notice") else text


def window(seconds: Any) -> str:
    """A rule's window, short: 90s, 10m, 1h, 24h, 7d."""
    if not isinstance(seconds, int) or seconds <= 0:
        return f"{seconds}s"
    if seconds % 86_400 == 0 and seconds > 86_400:
        return f"{seconds // 86_400}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def anomaly_rules_summary(rules: Any) -> str:
    """One line: each conflict-detection rule as it applies, MAX/WINDOW (more raises a flag), or off."""
    if not isinstance(rules, dict) or not rules:
        return "(not reported)"
    parts = []
    for name, rule in rules.items():
        if not isinstance(rule, dict):
            continue
        parts.append(f"{name} {rule.get('max')}/{window(rule.get('window_s'))}" if rule.get("max")
                     else f"{name} off")
    return ", ".join(parts)


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
    if answer.get("next_after"):
        lines.append(f"(more: --after {answer['next_after']})")
    return "\n".join(lines) or "(no events)"


def holders(answer: dict[str, Any]) -> str:
    """Who holds the license's seats: user and e-mail, hardware, the client's host and
    version, since, last heartbeat, until when, borrowed until; CI and overdraft seats marked."""
    def user(s: dict[str, Any]) -> str:
        return f"{s['uid']} <{s['email']}>" if s.get("email") else s["uid"]

    def kind(s: dict[str, Any]) -> str:
        marks = [s["state"]] + (["CI seat"] if s.get("ci") else []) + (["overage"] if s.get("overage") else [])
        return ", ".join(marks)

    def client(s: dict[str, Any], part: str, columns: int) -> str:
        return clip((s.get("client") or {}).get(part) or "-", columns)

    rows = [[s["session_id"], clip(user(s), 40), clip(s["hardware_id"], 24), client(s, "hostname", 24),
             client(s, "version", 16), when(s["since"]), when(s.get("last_heartbeat_at")), when(s["expires_at"]),
             when(s.get("borrowed_until"), never="-"), kind(s)] for s in answer["sessions"]]
    head = f"{answer['seats']['used']} of {answer['seats']['max']} seats in use"
    if isinstance(answer.get("ci_seats"), dict):
        head += f"; CI seats {answer['ci_seats']['used']} of {answer['ci_seats']['max']}"
    if not rows:
        return head
    return head + "\n" + table(["SESSION", "USER", "HARDWARE", "HOST", "VERSION", "SINCE", "LAST HEARTBEAT",
                                "UNTIL", "BORROWED UNTIL", "STATE"], rows)


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


# -- reports: GET licenses/{id}/report, licenses/{id}/report/users and report ------------------
SPARK = "▁▂▃▄▅▆▇█"
_SPARK_DAYS = 62  # days on one line of the sparkline
_LICENSE_COLUMNS, _TENANT_COLUMNS, _UID_COLUMNS = 36, 24, 40  # longer ids and names are clipped


def _number(value: Any, decimals: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


def _percent(ratio: Any) -> str:
    return "-" if ratio is None else f"{round(ratio * 100, 1):g}%"


def _seat_hours(seat_seconds: Any) -> str:
    return "-" if seat_seconds is None else f"{seat_seconds / 3600:.1f}"


def _duration(seconds: Any) -> str:
    """A time span in hours and minutes: 0, <1m, 45m, 4h05m."""
    if seconds is None:
        return "-"
    if not seconds:
        return "0"
    minutes = round(seconds / 60)
    if not minutes:
        return "<1m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def _instant(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


def _utc_date(value: Any) -> date | None:
    moment = _instant(value)
    return moment.date() if moment else None


def _start(value: Any, granularity: Any) -> str:
    """A row's start: its UTC date for a day's row, else the time as the server gave it."""
    moment = _instant(value)
    if granularity == "day" and moment is not None and moment.time() == datetime.min.time():
        return moment.date().isoformat()
    return when(value)


def daily_peaks(series: Sequence[dict[str, Any]]) -> dict[date, int]:
    """The highest peak of each UTC day, in order (hour rows grouped by the date they start on)."""
    peaks: dict[date, int] = {}
    for row in series:
        day = _utc_date(row.get("start"))
        if day is not None and isinstance(row.get("peak"), int | float):
            peaks[day] = max(peaks.get(day, 0), row["peak"])
    return dict(sorted(peaks.items()))


def spark(peak: float, top: float) -> str:
    """One day's block of SPARK (eight heights, ▁ = level 0 to █ = level 7).

    ▁ is a day no seat was in use; any other day is level round-half-up(7 * peak / top) but at
    least 1 (▂), so one seat never reads as none; a peak of `top` is █. E.g. peaks 0, 5, 10 of
    top 10 are ▁▅█ (7 * 5 / 10 = 3.5, rounded up to 4: ▅)."""
    if peak <= 0 or top <= 0:
        return SPARK[0]
    return SPARK[min(7, max(1, int(7 * peak / top + 0.5)))]


def sparkline(peaks: dict[date, int], top: float) -> list[str]:
    """Lines of DATE <one block a day> DATE, _SPARK_DAYS days each; a day without a row is a blank."""
    if not peaks:
        return []
    first, last = min(peaks), max(peaks)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    lines = []
    for i in range(0, len(days), _SPARK_DAYS):
        chunk = days[i:i + _SPARK_DAYS]
        blocks = "".join(spark(peaks[day], top) if day in peaks else " " for day in chunk)
        lines.append(f"{chunk[0].isoformat()} {blocks} {chunk[-1].isoformat()}")
    return lines


def right_size(value: Any) -> str:
    """The right-sizing sentence: N seats would have covered P% of the demand."""
    if not isinstance(value, dict) or value.get("seats") is None:
        return "not enough figures to tell"
    coverage = f" {_percent(value['coverage'])} of" if value.get("coverage") is not None else ""
    return f"{_plural(value['seats'], 'seat')} would have covered{coverage} the demand"


def report(answer: dict[str, Any]) -> str:
    """A license's report: the period, the summary, a row per hour or day, a sparkline of daily peaks."""
    series, summary, max_seats = answer.get("series") or [], answer.get("summary") or {}, answer.get("max_seats")
    head = (f"license {answer['license']} of tenant {answer['tenant']}: {when(answer['from'])} until "
            f"{when(answer['to'])} by {answer['granularity']}; "
            + (_plural(max_seats, "seat") if isinstance(max_seats, int) else "seats unknown"))
    peak = f"{_number(summary.get('peak'))} of {_number(max_seats)} seats (p95 {_number(summary.get('p95'))})"
    rows = [("peak", peak),
            ("average", f"{_number(summary.get('average'), 2)} seats in use, "
                        f"{_percent(summary.get('utilization'))} utilization"),
            ("seat-hours", _number(summary.get("seat_hours"))),
            ("at 100%", f"{_number(summary.get('hours_at_full'))} h with every seat in use"),
            ("denials", f"{_number(summary.get('denials'))} "
                        f"({_plural(summary.get('denied_callers') or 0, 'distinct caller')})"),
            ("grants", _number(summary.get("grants")))]
    if summary.get("overage_peak"):
        rows.append(("overage peak", f"{_plural(summary['overage_peak'], 'seat')} beyond max_seats (overdraft)"))
    sizing = summary.get("right_size")
    rows.append(("right size", right_size(sizing)))
    if isinstance(sizing, dict) and sizing.get("method"):
        rows.append(("", f"({sizing['method']})"))
    width = max(len(label) for label, _ in rows)
    lines = [head, "", *(f"{label:<{width}}  {value}".rstrip() for label, value in rows), ""]
    if not series:
        return "\n".join([*lines, "(no figures in this period)"])
    table_rows = [[_start(r.get("start"), answer.get("granularity")) + ("" if r.get("final", True) else "*"),
                   _number(r.get("peak")), _number(r.get("average"), 2), _seat_hours(r.get("seat_seconds")),
                   _number(r.get("denials")), _duration(r.get("at_full_s"))] for r in series]
    lines.append(table(["START", "PEAK", "AVERAGE", "SEAT-HOURS", "DENIALS", "AT 100%"], table_rows,
                       right=range(1, 6)))
    if not all(r.get("final", True) for r in series):
        lines.append(f"* live: figures through {when(answer.get('through'), never='now')}; "
                     "they change until the period is over")
    peaks = daily_peaks(series)
    top = max([max_seats if isinstance(max_seats, int) else 0, *peaks.values()])
    if peaks:
        lines += ["", f"daily peaks ({SPARK[0]} none, {SPARK[-1]} {_plural(top, 'seat')}):", *sparkline(peaks, top)]
    return "\n".join(lines)


def report_users(answer: dict[str, Any]) -> str:
    """Who held a license's seats in a period: a row per user, and the cursor of the next page."""
    users = answer.get("users") or []
    head = (f"users of {answer['license']}, {when(answer['from'])} until {when(answer['to'])}: "
            f"{len(users)} of {answer.get('total', len(users))}")
    more = f"\n(more: --after {answer['next']})" if answer.get("next") else ""
    if not users:
        return f"{head}\n(no user held a seat in this period){more}"
    rows = [[clip(u["uid"], _UID_COLUMNS), _number(u.get("seat_hours"), 2), _number(u.get("sessions")),
             _number(u.get("peak_sessions")), when(u.get("last_seen"))] for u in users]
    return f"{head}\n" + table(["UID", "SEAT-HOURS", "SESSIONS", "PEAK SESSIONS", "LAST SEEN"], rows,
                               right=(1, 2, 3)) + more


def tenant_report(answer: dict[str, Any]) -> str:
    """A report line per license of a tenant (or of every tenant), and the totals."""
    who = f"tenant {answer['tenant']}" if answer.get("tenant") else "all tenants"
    head = f"licenses of {who}, {when(answer['from'])} until {when(answer['to'])}"
    licenses = answer.get("licenses") or []
    if not licenses:
        return f"{head}\n(no licenses)"
    rows = [[clip(lic["license"], _LICENSE_COLUMNS), clip(lic["tenant"], _TENANT_COLUMNS),
             _number(lic.get("max_seats")), _number(lic.get("peak")), _number(lic.get("p95")),
             _number(lic.get("average"), 2), _percent(lic.get("utilization")), _number(lic.get("seat_hours")),
             _number(lic.get("hours_at_full")), _number(lic.get("denials")),
             _number(lic.get("right_size"))] for lic in licenses]
    totals = answer.get("totals") or {}
    total = (f"total: {_plural(totals.get('licenses', len(licenses)), 'license')}, "
             f"{_number(totals.get('seat_hours'))} seat-hours, {_number(totals.get('denials'))} denials, "
             f"peaks adding up to {_number(totals.get('peak_sum'))} seats")
    return "\n".join([head, table(["LICENSE", "TENANT", "SEATS", "PEAK", "P95", "AVERAGE", "UTIL", "SEAT-HOURS",
                                   "AT 100% (H)", "DENIALS", "RIGHT SIZE"], rows, right=range(2, 11)), total])
