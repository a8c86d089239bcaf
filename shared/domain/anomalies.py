"""Conflict detection: what looks like key sharing or abuse of one license, and the flags it raises.

Four rules, each with a threshold and a window an administrator sets per license
(`anomaly_rules`; `max` 0 switches a rule off):

    hardware_per_user      one user on more than `max` distinct hardware ids      subject: the uid
    users_per_hardware     one hardware id used by more than `max` users          subject: the hardware id
    addresses_per_session  one session heartbeating from more than `max` client   subject: the session id
                           addresses (its lease token handed around)
    grants_per_user        one user granted more than `max` seats (acquire,       subject: the uid
                           release, acquire ...: seat cycling)

The seat functions note what they see in Redis (shared/seats/signals.py: no Firestore read
or write on the hot path); the sweep evaluates a license's signals every few minutes
(shared/licensing/anomaly_watch.py) with `evaluate` below, and raises a flag per rule and
subject, with the evidence: the count, the threshold, when it was first and last seen,
and examples (at most ten), all of this license's own. A flag is raised once
(anomaly.detected); while it is open its evidence is kept current; an administrator
acknowledges it, and it is raised again only if its count grows past what was acknowledged.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from shared.domain.times import rfc3339

RULES = ("hardware_per_user", "users_per_hardware", "addresses_per_session", "grants_per_user")
WINDOW_S = (60, 7 * 86_400)
MAX = (0, 100_000)
EXAMPLES = 10
"""Examples a flag keeps of its evidence (the hardware ids, users, addresses, sessions)."""
FLAG_STATES = ("open", "acknowledged")
FLAG_ID = re.compile(r"lic_[0-9a-z]{20}\.(?:" + "|".join(RULES) + r")\.[0-9a-f]{20}")
"""What flag_id makes (a license id, the rule, a digest of the subject)."""


@dataclass(frozen=True)
class Rule:
    max: int
    """More than this within the window raises a flag; 0: the rule is off."""
    window_s: int

    def as_json(self) -> dict[str, int]:
        return {"max": self.max, "window_s": self.window_s}


DEFAULT_RULES: Mapping[str, Rule] = {
    "hardware_per_user": Rule(3, 86_400),
    "users_per_hardware": Rule(3, 86_400),
    "addresses_per_session": Rule(3, 3_600),
    "grants_per_user": Rule(60, 3_600),
}


@dataclass(frozen=True)
class AnomalyRules:
    """A license's thresholds: the defaults, but for what its administrator set."""

    set: tuple[tuple[str, Rule], ...] = ()

    def rule(self, name: str) -> Rule:
        return dict(self.set).get(name, DEFAULT_RULES[name])

    @property
    def longest_window_ms(self) -> int:
        """How long the signals must be kept for the rules that are on (0: none is)."""
        return max((self.rule(n).window_s * 1000 for n in RULES if self.rule(n).max), default=0)

    def as_json(self) -> dict[str, dict[str, int]]:
        """Every rule, as it applies."""
        return {name: self.rule(name).as_json() for name in RULES}

    def stored(self) -> dict[str, dict[str, int]]:
        """What was set (the rest follows the defaults, should they change)."""
        return {name: rule.as_json() for name, rule in self.set}

    def with_changes(self, changes: Mapping[str, Mapping[str, int]]) -> AnomalyRules:
        merged = dict(self.set)
        for name, values in changes.items():
            if name in RULES:  # (a rule stored by a later version is not this one's to apply)
                current = self.rule(name)
                merged[name] = Rule(int(values.get("max", current.max)),
                                    int(values.get("window_s", current.window_s)))
        return AnomalyRules(tuple(sorted(((n, r) for n, r in merged.items() if r != DEFAULT_RULES[n]),
                                         key=lambda item: item[0])))

    @classmethod
    def from_json(cls, body: Mapping[str, Any] | None) -> AnomalyRules:
        return cls().with_changes(body or {})


@dataclass(frozen=True)
class Seen:
    """One thing the seat functions noted: `key` (e.g. (uid, hardware id)) first and last seen."""

    key: tuple[str, ...]
    first_ms: int
    last_ms: int


@dataclass(frozen=True)
class Signals:
    """A license's notes (shared/seats/signals.py), oldest kept as long as the longest window."""

    pairs: tuple[Seen, ...] = ()  # (uid, hardware id) of each acquire
    addresses: tuple[Seen, ...] = ()  # (session id, uid, client address) of each heartbeat and grant
    grants: tuple[Seen, ...] = ()  # (uid, session id) of each seat granted


@dataclass(frozen=True)
class Finding:
    rule: str
    subject: str
    observed: int  # how many distinct hardware ids, users or addresses, or grants
    threshold: int
    window_s: int
    first_ms: int
    last_ms: int
    examples: tuple[str, ...]
    uid: str | None = None  # the user behind a session (addresses_per_session)


def evaluate(rules: AnomalyRules, signals: Signals, now_ms: int) -> list[Finding]:
    """What breaks a rule now, within each rule's window."""
    found: list[Finding] = []

    def grouped(rule_name: str, seen: Iterable[Seen], subject_of: int, counted: int) -> None:
        rule = rules.rule(rule_name)
        if not rule.max:
            return
        since = now_ms - rule.window_s * 1000
        groups: dict[str, dict[str, Seen]] = defaultdict(dict)
        for item in seen:
            if item.last_ms >= since:
                groups[item.key[subject_of]][item.key[counted]] = item
        for subject, members in sorted(groups.items()):
            if len(members) > rule.max:
                latest = sorted(members.values(), key=lambda s: (-s.last_ms, s.key))
                found.append(Finding(
                    rule_name, subject, len(members), rule.max, rule.window_s,
                    first_ms=min(max(s.first_ms, since) for s in latest), last_ms=latest[0].last_ms,
                    examples=tuple(s.key[counted] for s in latest[:EXAMPLES]),
                    uid=latest[0].key[1] if rule_name == "addresses_per_session" else None))

    grouped("hardware_per_user", signals.pairs, 0, 1)
    grouped("users_per_hardware", signals.pairs, 1, 0)
    grouped("addresses_per_session", signals.addresses, 0, 2)
    grouped("grants_per_user", signals.grants, 0, 1)
    return found


def flag_id(license_id: str, rule: str, subject: str) -> str:
    """One flag per license, rule and subject (a Firestore document id: no '/')."""
    digest = hashlib.sha256(f"{license_id}\x00{rule}\x00{subject}".encode()).hexdigest()[:20]
    return f"{license_id}.{rule}.{digest}"


@dataclass(frozen=True)
class Flag:
    id: str
    tenant_id: str
    license_id: str
    rule: str
    subject: str
    observed: int
    threshold: int
    window_s: int
    first_seen_ms: int
    last_seen_ms: int
    examples: tuple[str, ...]
    state: str  # open | acknowledged
    detected_ms: int
    updated_ms: int
    uid: str | None = None
    acknowledged_ms: int | None = None
    acknowledged_by: str | None = None
    acknowledged_count: int | None = None
    note: str | None = None
    times_raised: int = 1

    def admin_view(self) -> dict[str, Any]:
        return {
            "id": self.id, "tenant": self.tenant_id, "license": self.license_id, "rule": self.rule,
            "subject": self.subject, "uid": self.uid, "state": self.state,
            "evidence": {"count": self.observed, "threshold": self.threshold, "window_s": self.window_s,
                         "first_seen": rfc3339(self.first_seen_ms), "last_seen": rfc3339(self.last_seen_ms),
                         "examples": list(self.examples)},
            "detected_at": rfc3339(self.detected_ms), "updated_at": rfc3339(self.updated_ms),
            "times_raised": self.times_raised,
            "acknowledged": None if self.acknowledged_ms is None else {
                "at": rfc3339(self.acknowledged_ms), "by": self.acknowledged_by,
                "count": self.acknowledged_count, "note": self.note},
        }

    def event_details(self) -> dict[str, Any]:
        """What anomaly.detected carries (and the audit log keeps)."""
        view = self.admin_view()
        return {"flag": self.id, "rule": self.rule, "subject": self.subject, "uid": self.uid,
                "evidence": view["evidence"], "times_raised": self.times_raised}


@dataclass(frozen=True)
class Raised:
    """What raising a finding did to its flag: `event` is set when it is (re)raised now."""

    flag: Flag
    change: str  # opened | reopened | updated | unchanged
    event_id: str | None = None


def raise_finding(before: Flag | None, finding: Finding, *, tenant_id: str, license_id: str, now_ms: int) -> Raised:
    """The flag after `finding` (pure: the store runs it in a transaction on the flag as stored)."""
    if before is None:
        flag = Flag(flag_id(license_id, finding.rule, finding.subject), tenant_id, license_id, finding.rule,
                    finding.subject, finding.observed, finding.threshold, finding.window_s, finding.first_ms,
                    finding.last_ms, finding.examples, "open", now_ms, now_ms, uid=finding.uid)
        return Raised(flag, "opened", f"{flag.id}.1")
    current = replace(before, observed=finding.observed, threshold=finding.threshold, window_s=finding.window_s,
                      first_seen_ms=min(before.first_seen_ms, finding.first_ms),  # since it was first raised
                      last_seen_ms=finding.last_ms, examples=finding.examples, uid=finding.uid, updated_ms=now_ms)
    if before.state == "acknowledged":
        if finding.observed <= (before.acknowledged_count or 0):
            return Raised(before, "unchanged")
        flag = replace(current, state="open", times_raised=before.times_raised + 1)
        return Raised(flag, "reopened", f"{flag.id}.{flag.times_raised}")
    if (finding.observed, finding.last_ms, finding.examples) == (before.observed, before.last_seen_ms, before.examples):
        return Raised(before, "unchanged")
    return Raised(current, "updated")


def acknowledge(flag: Flag, *, by: str, note: str | None, now_ms: int) -> Flag:
    """An administrator has seen it: raised again only if its count grows past this one."""
    return replace(flag, state="acknowledged", acknowledged_ms=now_ms, acknowledged_by=by,
                   acknowledged_count=flag.observed, note=note, updated_ms=now_ms)
