"""Usage reports and signed usage statements (the admin function's report routes).

    report      one license over a period, per hour or per day: the series of figures
                (shared/domain/usage.py series_row) and a summary with the right-sizing
                line. Closed hours come from the history; the hours not closed yet are
                computed live (their rows say final: false).
    users       one license's use per user over whole UTC days, sorted and paged.
    tenant      every license of a tenant (the owner: of every tenant, or one) over a
                period, from the closed hours only (live figures per license would cost a
                query each): `through` says up to when.
    statement   a month's figures, and the SHA-256 of its hourly series, in a JWS signed
                by the same KMS-rooted delegation as lease tokens (typ usage-statement+jwt),
                so that anyone holding the `jwks` can check it offline. Only closed hours
                are in it; `final` says whether that is the whole month.
Visibility is the admin routes' (shared/licensing/access.py): another tenant's license
is 404. Every time is UTC; a bound given as a date is its midnight UTC.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from shared.clock import Clock
from shared.domain import AuditEvent, License, Principal
from shared.domain.times import DAY_MS, HOUR_MS, parse_rfc3339, rfc3339, utc_day
from shared.domain.usage import (
    OTHERS,
    day_start_ms,
    floor_day,
    hour_start_ms,
    idle,
    merge_users,
    roll_up,
    series_row,
    summary,
)
from shared.errors import InvalidRequest
from shared.ids import IdGenerator
from shared.licensing.access import tenant_scope, visible_license
from shared.licensing.admin_requests import (
    ReportQuery,
    StatementQuery,
    TenantReportQuery,
    UsageQuery,
    UsersReportQuery,
)
from shared.licensing.ports import DurableRecord, LeaseSigner, SeatLedger
from shared.licensing.usage_history import UsageHistory

MAX_HOURLY_DAYS = 93
"""The longest period a report gives hour by hour (2,232 rows)."""
MAX_DAYS = 800
TENANT_LICENSES = 1000
"""Licenses listed in a tenant's report (with no use in the period too)."""
SERIES_CANONICAL = "json-lines-v1"
"""How a statement hashes its series: each hourly row as JSON (keys sorted, no spaces,
UTF-8), one per line, each line ending in a newline; SHA-256 of it all, in hex."""


def series_sha256(rows: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def _bound(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return day_start_ms(value) if len(value) == 10 else parse_rfc3339(value)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}", field=name) from None


class UsageReports:
    def __init__(self, *, store: DurableRecord, history: UsageHistory, seats: SeatLedger, signer: LeaseSigner,
                 clock: Clock, ids: IdGenerator, issuer: str, retention_days: int):
        self._store = store
        self._history = history
        self._usage = history.record
        self._seats = seats
        self._signer = signer
        self._clock = clock
        self._ids = ids
        self._issuer = issuer
        self._retention_days = retention_days

    # -- periods ------------------------------------------------------------------------------
    def _period(self, query: ReportQuery | UsersReportQuery | TenantReportQuery, step: int,
                longest_days: int) -> tuple[int, int]:
        """[from, to) of a query, widened to whole steps (hours or days), `to` no later than
        the step now is in. Defaults: the last 30 days up to now."""
        now = self._clock.now_ms()
        to = _bound(query.to, "to")
        end = min(to if to is not None else now, now)
        end = -(-end // step) * step  # the step now is in, whole
        start_given = _bound(query.from_, "from")
        start = (start_given if start_given is not None else end - 30 * DAY_MS) // step * step
        if to is not None and start_given is not None and start_given >= to:
            raise InvalidRequest("from must be before to", field="from")
        if start >= end:
            raise InvalidRequest("the period has not begun yet: from must be in the past", field="from")
        if end - start > longest_days * DAY_MS:
            raise InvalidRequest(f"a report covers at most {longest_days} days at this granularity", field="from")
        return start, end

    def _hourly_kept_from(self) -> int:
        return floor_day(self._clock.now_ms() - self._retention_days * DAY_MS)

    # -- one license's figures ------------------------------------------------------------------
    def _hours(self, lic: License, start: int, end: int) -> list[tuple[int, dict[str, Any], bool]]:
        """(hour start, figures, final) of every hour of [start, end) up to now."""
        if start < self._hourly_kept_from():
            raise InvalidRequest(f"hourly figures are kept for {self._retention_days} days: ask for "
                                 "granularity=day further back", field="from")
        days = {d["day"]: d for d in self._usage.license_days(lic.id, utc_day(start), utc_day(end - 1) + "~")}
        open_hours = self._history.open_hours(lic, start, end)
        now = self._clock.now_ms()
        out = []
        for hour in range(start, min(end, now), HOUR_MS):
            if hour in open_hours:
                out.append((hour, open_hours[hour], False))
                continue
            stored = (days.get(utc_day(hour)) or {}).get("hours", {}).get(f"{hour // HOUR_MS % 24:02d}")
            out.append((hour, stored or idle(3600, lic.max_seats), True))
        return out

    def _days(self, lic: License, start: int, end: int) -> list[tuple[int, dict[str, Any], bool]]:
        """(day start, figures, final) of every day of [start, end) up to now: the closed
        hours' totals, the open hours live, idle time for the rest."""
        days = {d["day"]: d for d in self._usage.license_days(lic.id, utc_day(start), utc_day(end - 1) + "~")}
        open_from = hour_start_ms(self._history.first_open_hour())
        open_hours = self._history.open_hours(lic, max(start, open_from), end)
        now = self._clock.now_ms()
        out = []
        for day in range(start, min(end, now), DAY_MS):
            parts: list[dict[str, Any]] = []
            if (stored := days.get(utc_day(day))) is not None:
                parts.append(stored["total"])
            parts += [figures for hour, figures in open_hours.items() if day <= hour < day + DAY_MS]
            elapsed_s = (min(day + DAY_MS, now) - day) // 1000
            missing = elapsed_s - sum(int(p["seconds"]) for p in parts)
            if missing > 0:
                parts.append(idle(missing, lic.max_seats))
            out.append((day, roll_up(parts), day + DAY_MS <= open_from))
        return out

    def _through(self) -> int:
        """Figures are final up to here: the end of the last closed hour."""
        return hour_start_ms(self._history.first_open_hour())

    # -- the routes -------------------------------------------------------------------------------
    def report(self, caller: Principal, license_id: str, query: ReportQuery) -> dict[str, Any]:
        lic = visible_license(self._store, caller, license_id)
        hourly = query.granularity == "hour"
        start, end = self._period(query, HOUR_MS if hourly else DAY_MS, MAX_HOURLY_DAYS if hourly else MAX_DAYS)
        points = self._hours(lic, start, end) if hourly else self._days(lic, start, end)
        period = roll_up(figures for _, figures, _ in points)
        period["max_seats"] = lic.max_seats
        return {
            "license": lic.id, "tenant": lic.tenant_id, "granularity": query.granularity,
            "from": rfc3339(start), "to": rfc3339(end), "through": rfc3339(self._through()),
            "max_seats": lic.max_seats,
            "series": [series_row(at, figures, final=final) for at, figures, final in points],
            "summary": summary(period),
        }

    def recent_days(self, caller: Principal, license_id: str, query: UsageQuery) -> dict[str, Any]:
        """The last `days` UTC days, today included, and the seats in use now (the `usage` route)."""
        lic = visible_license(self._store, caller, license_id)
        now = self._clock.now_ms()
        end = floor_day(now) + DAY_MS
        points = self._days(lic, end - query.days * DAY_MS, end)
        used, _ = self._seats.seat_use(lic.id, now_ms=now)
        days = []
        for at, figures, _ in points:
            row = series_row(at, figures, final=True)
            day = {"date": utc_day(at), "peak": row["peak"], "denials": row["denials"], "overage": row["overage"],
                   "queued": row["queued"]}
            if row["queued"]:
                day.update(queue_wait_p50_s=row["queue_wait_p50_s"], queue_wait_p95_s=row["queue_wait_p95_s"])
            days.append(day)
        return {"license": lic.id, "seats": {"used": used, "max": lic.max_seats}, "days": days}

    def users(self, caller: Principal, license_id: str, query: UsersReportQuery) -> dict[str, Any]:
        lic = visible_license(self._store, caller, license_id)
        start, end = self._period(query, DAY_MS, MAX_DAYS)
        merged: dict[str, dict[str, int]] = {}
        for doc in self._usage.license_days(lic.id, utc_day(start), utc_day(end - 1) + "~"):
            merge_users(merged, doc.get("users") or {})
        for figures in self._history.open_hours(lic, start, end).values():
            merge_users(merged, figures["users"])
        rows: list[dict[str, Any]] = [{"uid": uid, "seat_hours": round(use["s"] / 3600, 3), "sessions": use["n"],
                                       "peak_sessions": use["p"], "last_seen": rfc3339(use["l"]) if use["l"] else None,
                                       **({"others": use.get("u", 0)} if uid == OTHERS else {})}
                                      for uid, use in merged.items()]
        descending = query.order != "asc" if query.order else query.sort != "uid"
        rows.sort(key=lambda r: r["uid"])  # ties in the sort key stay in uid order
        rows.sort(key=lambda r: r[query.sort] or "", reverse=descending)
        page = rows[query.after : query.after + query.limit]
        more = query.after + query.limit < len(rows)
        return {"license": lic.id, "tenant": lic.tenant_id, "from": rfc3339(start), "to": rfc3339(end),
                "sort": query.sort, "order": "desc" if descending else "asc", "total": len(rows),
                "users": page, "next": str(query.after + query.limit) if more else None}

    def tenant_report(self, caller: Principal, query: TenantReportQuery) -> dict[str, Any]:
        scope = tenant_scope(caller, query.tenant)
        start, end = self._period(query, DAY_MS, MAX_DAYS)
        through = min(end, self._through())
        if query.tenant and scope != query.tenant:  # an admin asking for another tenant: nothing
            return {"from": rfc3339(start), "to": rfc3339(end), "through": rfc3339(through), "tenant": query.tenant,
                    "licenses": [], "totals": _totals([])}
        by_license: dict[str, list[dict[str, Any]]] = {}
        tenant_of: dict[str, str] = {}
        for doc in self._usage.tenant_days(scope, utc_day(start), utc_day(end - 1) + "~"):
            by_license.setdefault(doc["license_id"], []).append(doc["total"])
            tenant_of[doc["license_id"]] = doc["tenant_id"]
        licenses = {lic.id: lic for lic in self._store.list_licenses(tenant_id=scope, limit=TENANT_LICENSES)} \
            if scope is not None else {}
        for license_id in set(by_license) - set(licenses):
            found = self._store.get_license(license_id)
            if found is not None:
                licenses[license_id] = found
        seconds = max(0, (through - start) // 1000)
        rows = []
        for license_id in sorted(licenses):
            lic = licenses[license_id]
            parts = by_license.get(license_id, [])
            missing = seconds - sum(int(p["seconds"]) for p in parts)
            period = roll_up([*parts, *([idle(missing, lic.max_seats)] if missing > 0 else [])])
            period["max_seats"] = lic.max_seats
            figures = summary(period)
            rows.append({"license": lic.id, "tenant": lic.tenant_id, "max_seats": lic.max_seats,
                         **{k: figures[k] for k in ("peak", "p95", "average", "utilization", "seat_hours",
                                                    "hours_at_full", "denials")},
                         "right_size": figures["right_size"]["seats"]})
        return {"from": rfc3339(start), "to": rfc3339(end), "through": rfc3339(through), "tenant": scope,
                "licenses": rows, "totals": _totals(rows)}

    def statement(self, caller: Principal, license_id: str, query: StatementQuery) -> dict[str, Any]:
        lic = visible_license(self._store, caller, license_id)
        month = datetime.strptime(query.month, "%Y-%m").replace(tzinfo=UTC)
        start = int(month.timestamp()) * 1000
        following = month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)
        end = int(following.timestamp()) * 1000
        through = min(end, self._through())
        if through <= start:
            raise InvalidRequest(f"no hour of {query.month} is closed yet: a statement covers closed hours only",
                                 field="month")
        if start < self._hourly_kept_from():
            raise InvalidRequest(f"the hours of {query.month} are no longer kept (the retention is "
                                 f"{self._retention_days} days): no statement can be made for it", field="month")
        points = self._hours(lic, start, through)
        rows = [series_row(at, figures, final=final) for at, figures, final in points]
        period = roll_up(figures for _, figures, _ in points)
        period["max_seats"] = lic.max_seats
        figures = summary(period)
        now_s = self._clock.now_ms() // 1000
        claims: dict[str, Any] = {
            "iss": self._issuer, "iat": now_s, "sub": lic.id, "tenant": lic.tenant_id, "month": query.month,
            "from": rfc3339(start).replace(".000Z", "Z"), "to": rfc3339(end).replace(".000Z", "Z"),
            "through": rfc3339(through).replace(".000Z", "Z"), "final": through == end,
            "max_seats": lic.max_seats,
            "figures": {"peak": figures["peak"], "p95": figures["p95"], "average": figures["average"],
                        "seat_hours": figures["seat_hours"], "hours_at_full": figures["hours_at_full"],
                        "denials": figures["denials"], "overage_peak": figures["overage_peak"],
                        "grants": figures["grants"], "right_size_99": figures["right_size"]["seats"]},
            "series": {"granularity": "hour", "count": len(rows), "sha256": series_sha256(rows),
                       "canonical": SERIES_CANONICAL},
        }
        self._signer.prepare(now_s)
        statement = self._signer.sign_statement(claims)
        self._store.record_event(AuditEvent(
            self._ids.event_id(), lic.tenant_id, lic.id, "usage.statement", caller.uid, self._clock.now_ms(),
            details={"month": query.month, "final": claims["final"], "series_sha256": claims["series"]["sha256"]}))
        return {"statement": statement, "claims": claims}


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"licenses": len(rows), "seat_hours": round(sum(r["seat_hours"] for r in rows), 3),
            "denials": sum(r["denials"] for r in rows), "peak_sum": sum(r["peak"] for r in rows)}
