"""The usage history: the sweep's usage step, and the open hours computed live.

Every sweep run (shared/licensing/sweep.py), under its lock:
    take        each license it visits hands over its Redis counters if they changed
                (take_usage: the counters of closed hours are dropped there);
    checkpoint  what was taken is written, one document per hour for all licenses (so a
                Redis loss loses at most the counts since the last sweep: the rebuild
                puts the checkpoint back before the table counts again);
    close       each hour that ended at least `close_after_s` ago, in order, becomes
                final: its figures per license, from the durable session records and the
                checkpoint, go into the license's day document; then the hour is marked
                closed (usage_state) and its checkpoint dropped;
    retain      day documents older than the retention lose their hours (their totals
                and per-user figures stay).
Closing is idempotent: an hour's figures are a function of the session records and the
checkpoint, set whole; per-user figures are added once per hour (the day records the last
hour added). A crashed or repeated sweep writes the same documents again. A run that did
not visit every license (its budget ran out) closes nothing: the counters of an
unvisited license may not be in the checkpoint yet.

An hour's session figures are those of the records at the time it closes; a session
recorded later as never having held a seat (the sweep's audit, rare) does not reopen it.
The license's max_seats at closing time is the hour's.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from shared.clock import Clock
from shared.domain import License, SessionRecord
from shared.domain.times import DAY_MS, HOUR_MS, utc_day
from shared.domain.usage import (
    SeatSpan,
    capped_users,
    day_doc_id,
    floor_hour,
    hour_key,
    hour_start_ms,
    hour_usage,
    merge_users,
    roll_up,
)
from shared.licensing.license_directory import LicenseDirectory
from shared.licensing.ports import DurableRecord, SeatLedger, SweepLock, UsageRecord

log = logging.getLogger(__name__)

MAX_HOURS_PER_RUN = 24
"""Hours one run closes at most (a sweep that was down for days catches up a day a run)."""
RETAIN_PER_RUN = 500
CLOSE_CHUNK = 250
"""Licenses whose figures of an hour are read and written together (two commits at most)."""
_CLOSED_CACHE_MS = 5_000


def seat_spans(sessions: Iterable[SessionRecord], seats: SeatLedger, *, now_ms: int) -> dict[str, list[SeatSpan]]:
    """Each license's seat spans, from its durable session records. A session Firestore
    calls active is asked of the seat table: live there, it is counted up to now; ended
    there (its end not durable yet), up to its end; unknown there (Redis lost it, and the
    rebuild decides), up to now."""
    by_license: dict[str, list[SessionRecord]] = defaultdict(list)
    for session in sessions:
        by_license[session.license_id].append(session)
    spans: dict[str, list[SeatSpan]] = {}
    for license_id, records in by_license.items():
        active = [s.id for s in records if s.status == "active"]
        in_table = seats.lease_records(license_id, active) if active else {}
        out = []
        for s in records:
            reason: str | None = None
            if s.status != "active" and s.ended_ms is not None:
                end, reason = s.ended_ms, s.end_reason
                if s.seat_held_until_ms:  # an ended borrow whose seat still counted
                    end = max(end, min(s.seat_held_until_ms, now_ms))
            elif (lease := in_table.get(s.id)) is not None and lease.state not in ("live", "held"):
                end, reason = (lease.ended_ms if lease.ended_ms is not None else lease.expires_ms), lease.state
            else:
                end = now_ms
            out.append(SeatSpan(s.id, s.uid, s.acquired_ms, max(end, s.acquired_ms), reason, s.ci))
        spans[license_id] = out
    return spans


def merged_counters(*copies: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Counters by hour from several copies (Redis now, the checkpoint): the larger of each
    (Redis counts on from the checkpoint after a loss, so it never holds less but briefly)."""
    out: dict[str, dict[str, int]] = {}
    for copy in copies:
        for hour, counters in copy.items():
            mine = out.setdefault(hour, {})
            for name, value in counters.items():
                mine[name] = max(mine.get(name, 0), int(value))
    return out


def with_hour(doc: dict[str, Any] | None, lic: License, hour: str, figures: dict[str, Any]) -> dict[str, Any]:
    """The license's day document with `hour` closed as `figures` (hour_usage's)."""
    doc = dict(doc or {})
    hours = dict(doc.get("hours") or {})
    figures = dict(figures)
    users = figures.pop("users")
    hh = hour[11:13]
    hours[hh] = figures
    day_users = {uid: dict(use) for uid, use in (doc.get("users") or {}).items()}
    through = doc.get("users_through")
    if through is None or through < hh:
        merge_users(day_users, users)
        day_users = capped_users(day_users)
        through = hh
    total = roll_up(hours.values())
    total.pop("users")
    return {"license_id": lic.id, "tenant_id": lic.tenant_id, "day": hour[:10], "hours": hours, "has_hours": True,
            "total": total, "users": day_users, "users_through": through}


def _active(figures: dict[str, Any]) -> bool:
    """Whether an hour had anything worth a document (an idle hour has none)."""
    return bool(figures["peak"] or figures["ci_peak"] or figures["denials"] or figures["queued"]
                or figures["users"])


class UsageHistory:
    def __init__(self, *, seats: SeatLedger, store: DurableRecord, usage: UsageRecord, licenses: LicenseDirectory,
                 clock: Clock, close_after_s: int = 120, retention_days: int = 400):
        self._seats = seats
        self._store = store
        self._usage = usage
        self._licenses = licenses
        self._clock = clock
        self._close_after_ms = close_after_s * 1000
        self._retention_days = retention_days
        self._taken: dict[str, dict[str, dict[str, int]]] = {}  # license -> hour -> counters
        self._closed_cache: tuple[int, str | None] | None = None  # (read at, closed_through)

    @property
    def record(self) -> UsageRecord:
        return self._usage

    # -- the sweep's usage step ------------------------------------------------------------------
    def first_open_hour(self, *, fresh: bool = False) -> str:
        """The first hour not closed yet ("YYYY-MM-DDTHH"). Read at most every few seconds
        (it changes once an hour; a report that reads it a moment late computes a hour
        just closed live, to the same figures)."""
        now = self._clock.now_ms()
        if fresh or self._closed_cache is None or not 0 <= now - self._closed_cache[0] < _CLOSED_CACHE_MS:
            self._closed_cache = (now, self._usage.closed_through())
        closed = self._closed_cache[1]
        if closed is None:
            # Never closed one: the history starts with the last hour that is due.
            return hour_key(floor_hour(self._clock.now_ms() - self._close_after_ms) - HOUR_MS)
        return hour_key(hour_start_ms(closed) + HOUR_MS)

    def take(self, license_id: str, *, keep_from_hour: str) -> dict[str, dict[str, int]]:
        """Take the license's counters (if they changed) for the next checkpoint; what was
        taken, by hour ({} if nothing changed)."""
        taken = self._seats.take_usage_changes(license_id, keep_from_hour=keep_from_hour)
        if taken:
            self._taken[license_id] = taken
        return taken

    def checkpoint(self) -> int:
        """Write what was taken (one document per hour); its number of writes. If a write
        fails, the licenses are marked changed again so the next sweep takes them again."""
        taken, self._taken = self._taken, {}
        by_hour: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
        for license_id, hours in taken.items():
            for hour, counters in hours.items():
                by_hour[hour][license_id] = counters
        try:
            return sum(self._usage.write_checkpoint(hour, by_hour[hour]) for hour in sorted(by_hour))
        except BaseException:
            for license_id in taken:
                self._seats.mark_usage_changed(license_id)
            raise

    def close_due_hours(self, lock: SweepLock, deadline: float) -> tuple[int, int]:
        """Close every hour that is due, oldest first, up to MAX_HOURS_PER_RUN; (hours closed,
        Firestore writes). Licenses are closed CLOSE_CHUNK at a time; at the deadline the run
        notes how far it got (usage_state) and the next one goes on from there, so closing
        always advances, however many licenses there are."""
        now = self._clock.now_ms()
        first = hour_start_ms(self.first_open_hour())
        due = [h for h in range(first, floor_hour(now - self._close_after_ms), HOUR_MS)][:MAX_HOURS_PER_RUN]
        if not due:
            return 0, 0
        spans = seat_spans(self._store.sessions_overlapping(due[0]), self._seats, now_ms=now)
        closed = writes = 0
        progressed = False
        for start in due:
            hour = hour_key(start)
            counters = self._usage.checkpoint(hour)
            after = self._usage.closing_after(hour)
            pending = [license_id for license_id in sorted(set(spans) | set(counters)) if license_id > after]
            for at in range(0, len(pending), CLOSE_CHUNK):
                if progressed and time.monotonic() >= deadline:
                    self._usage.save_closing(hour, pending[at - 1] if at else after)
                    return closed, writes + 1
                lock.check()
                writes += self._close_licenses(hour, pending[at : at + CLOSE_CHUNK], spans, counters)
                progressed = True
            lock.check()
            self._usage.set_closed_through(hour)
            self._closed_cache = (self._clock.now_ms(), hour)
            writes += 1 + self._usage.drop_checkpoint(hour)
            log.info("usage hour %s closed: %d licenses", hour, len(pending))
            closed, progressed = closed + 1, True
        return closed, writes

    def _close_licenses(self, hour: str, license_ids: list[str], spans: dict[str, list[SeatSpan]],
                        counters: dict[str, dict[str, int]]) -> int:
        """Write these licenses' figures of `hour` into their day documents; writes made."""
        start = hour_start_ms(hour)
        figures: dict[str, tuple[License, dict[str, Any]]] = {}
        for license_id in license_ids:
            entry = self._licenses.by_id(license_id)
            if entry is None:
                continue  # a license that no longer exists has no history to add to
            lic = entry.license
            hour_figures = hour_usage(spans.get(license_id, ()), counters.get(license_id, {}), start_ms=start,
                                      end_ms=start + HOUR_MS, max_seats=lic.max_seats)
            if _active(hour_figures):
                figures[license_id] = (lic, hour_figures)
        day = hour[:10]
        stored = self._usage.days(day_doc_id(license_id, day) for license_id in figures)
        docs = {day_doc_id(license_id, day): with_hour(stored.get(day_doc_id(license_id, day)), lic, hour, f)
                for license_id, (lic, f) in figures.items()}
        return self._usage.write_days(docs, hour=hour) if docs else 0

    def retain(self, lock: SweepLock) -> int:
        """Roll day documents past the retention up (their hours dropped); writes made."""
        cutoff = utc_day(self._clock.now_ms() - self._retention_days * DAY_MS)
        old = self._usage.days_with_hours_before(cutoff, limit=RETAIN_PER_RUN)
        if not old:
            return 0
        lock.check()
        return self._usage.drop_hours([day_doc_id(d["license_id"], d["day"]) for d in old])

    # -- the open hours, live ----------------------------------------------------------------------
    def open_hours(self, lic: License, from_ms: int, to_ms: int) -> dict[int, dict[str, Any]]:
        """The figures of the hours of [from, to) not closed yet, up to now: {hour start:
        figures} (the open hour's figures cover the part of it gone by)."""
        now = self._clock.now_ms()
        first = max(floor_hour(from_ms), hour_start_ms(self.first_open_hour()))
        end = min(to_ms, now)
        if first >= end:
            return {}
        spans = seat_spans(self._store.sessions_overlapping(first, license_id=lic.id), self._seats,
                           now_ms=now).get(lic.id, [])
        counters = merged_counters(self._seats.hourly_usage(lic.id), self._usage.license_checkpoints(lic.id))
        return {start: hour_usage(spans, counters.get(hour_key(start), {}), start_ms=start,
                                  end_ms=min(start + HOUR_MS, now), max_seats=lic.max_seats)
                for start in range(first, end, HOUR_MS)}
