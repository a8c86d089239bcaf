"""Seat policies: who may hold a license's seats, and which seats (docs/design.md, "Seat policies").

A license's `SeatPolicy` (every part optional; the default is today's bare count):
    groups    named sets of users, each defined by any of: uids, verified-email domains,
              a custom claim value (the ID token's claim equals it, or is a list holding
              it). Groups are per license: they travel with the license, its cache and its
              generation, so an edit takes effect on the next request everywhere, and a
              license's rules never depend on a document another license's edit changes.
    exclude   groups, users (uids or email addresses) and hardware ids that never hold a
              seat ("kick and block": force-release, then exclude);
    include   if set, only its groups and users may hold a seat;
    reserve   [{group, seats}]: seats held for the group's members; nobody else takes
              them, even idle; a member takes a reserved seat first;
    max       [{group, seats}]: the group's members together hold at most that many;
    overdraft grants beyond max_seats, up to `overdraft_seats` more (or a ratio of
              max_seats, as Keygen's 1.25x/1.5x/2x), each marked as overage.
    queue     when no seat is free, a caller may wait in line instead of polling: a ticket,
              kept alive by polling, that gets the next seat it can take held for it for
              a claim window; strict first come, first served, or by priority groups.

Evaluation order, fixed (as FlexNet documents its own options file):
    exclude -> include -> group max -> per-user max -> reserved seat for the caller
    -> free unreserved seat -> overdraft -> queue (if on, and asked for) or refuse
Exclude and include depend only on the caller and are checked before the seat table;
everything after depends on the table and runs in the acquire script, atomically.
Group membership is evaluated when a seat is granted and stays with the lease.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.domain.principal import Principal

GROUP_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
"""Group names: short, lower case, safe inside a Redis member and a log line."""
CLAIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_GROUPS = 20
MAX_RULE_ITEMS = 1000
"""Users, hardware ids or domains in one rule or group (a license's policy stays one document)."""
MAX_OVERDRAFT_RATIO = 10.0
RESERVED_CLAIMS = frozenset({"iss", "aud", "auth_time", "user_id", "sub", "iat", "exp", "email", "email_verified",
                             "firebase", "uid", "role", "tenant", "name", "picture", "phone_number"})
"""Claims a group may not be defined by: identity and platform claims, not group labels."""


@dataclass(frozen=True)
class Group:
    name: str
    uids: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    """Verified-email domains, lower case."""
    claim: tuple[str, str] | None = None
    """(claim name, value): a member if the caller's custom claim equals the value or is a list holding it."""

    def contains(self, caller: Principal) -> bool:
        if caller.uid in self.uids:
            return True
        if self.domains and caller.email and caller.email_verified and "@" in caller.email:
            if caller.email.rsplit("@", 1)[1].lower() in self.domains:
                return True
        if self.claim is not None:
            value = caller.claims.get(self.claim[0])
            return value == self.claim[1] or (isinstance(value, (list, tuple)) and self.claim[1] in value)
        return False

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name}
        if self.uids:
            body["uids"] = list(self.uids)
        if self.domains:
            body["domains"] = list(self.domains)
        if self.claim is not None:
            body["claim"] = {"name": self.claim[0], "value": self.claim[1]}
        return body


@dataclass(frozen=True)
class Rule:
    """An include or exclude list: groups, users (uid or email address), hardware ids."""

    groups: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    hardware: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.groups or self.users or self.hardware)

    def matches(self, caller: Principal, member_of: tuple[str, ...], hardware_id: str | None) -> bool:
        email = caller.email.lower() if caller.email and caller.email_verified else None
        return (caller.uid in self.users or (email is not None and email in self.users)
                or any(g in self.groups for g in member_of)
                or (hardware_id is not None and hardware_id in self.hardware))

    def as_json(self) -> dict[str, Any]:
        return {k: list(v) for k, v in (("groups", self.groups), ("users", self.users),
                                         ("hardware", self.hardware)) if v}


@dataclass(frozen=True)
class GroupSeats:
    group: str
    seats: int


@dataclass(frozen=True)
class QueuePolicy:
    """A license's wait queue (shared/seats/lua/_prelude.lua, "The wait queue")."""

    max_length: int = 100
    """Tickets waiting at once; one more is refused as when there is no queue (409)."""
    claim_window_s: int = 30
    """How long a seat freed for a ticket stays held for it; unclaimed, it passes on."""
    poll_interval_s: int = 10
    """How often a waiting client polls; a ticket not polled for 3 intervals lapses."""
    priority: tuple[str, ...] = ()
    """Groups served before everyone else, in this order (RLM's PRIORITY); empty: strict FIFO."""

    BOUNDS = {"max_length": (1, 10_000), "claim_window_s": (5, 600), "poll_interval_s": (1, 300)}

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"max_length": self.max_length, "claim_window_s": self.claim_window_s,
                                "poll_interval_s": self.poll_interval_s}
        if self.priority:
            body["priority"] = list(self.priority)
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> QueuePolicy:
        return cls(max_length=int(body.get("max_length", 100)), claim_window_s=int(body.get("claim_window_s", 30)),
                   poll_interval_s=int(body.get("poll_interval_s", 10)), priority=tuple(body.get("priority", ())))


@dataclass(frozen=True)
class PolicyRefusal:
    """Why a caller may not hold a seat at all: which rule (never who else it names)."""

    rule: str  # "excluded" | "not_included"
    message: str


@dataclass(frozen=True)
class SeatPolicy:
    groups: tuple[Group, ...] = ()
    include: Rule = field(default_factory=Rule)
    exclude: Rule = field(default_factory=Rule)
    reserve: tuple[GroupSeats, ...] = ()
    max: tuple[GroupSeats, ...] = ()
    overdraft_seats: int = 0
    overdraft_ratio: float | None = None
    """If set, the overdraft is floor(max_seats x (ratio - 1)) and follows max_seats."""
    queue: QueuePolicy | None = None
    """The wait queue; None: no queue (a caller with no seat is refused, 409)."""

    @property
    def is_default(self) -> bool:
        return self == SeatPolicy()

    def overdraft(self, max_seats: int) -> int:
        if self.overdraft_ratio is not None:
            return math.floor(max_seats * (self.overdraft_ratio - 1) + 1e-9)
        return self.overdraft_seats

    def groups_of(self, caller: Principal) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups if g.contains(caller))

    def refusal(self, caller: Principal, member_of: tuple[str, ...], hardware_id: str | None) -> PolicyRefusal | None:
        """Exclude, then include (the first two steps of the evaluation order).

        A machine key (caller.is_machine) is held to exclude (its uid `key:<id>`, its groups
        by uid, its hardware ids) but not to include: the tenant's administrator issued it
        for these very licenses, which is an inclusion of its own."""
        if self.exclude.matches(caller, member_of, hardware_id):
            return PolicyRefusal("excluded", "the license's administrator has excluded this user or machine")
        if self.include and not caller.is_machine and not self.include.matches(caller, member_of, None):
            return PolicyRefusal("not_included", "this license is restricted to the users and groups it includes")
        return None

    def script_policy(self, max_seats: int, *, ci_seats: int = 0) -> dict[str, Any] | None:
        """What the seat scripts need of the policy (None: a bare count; shared/seats/lua/_prelude.lua):
        max {group: seats}, res [[group, seats]] in policy order, od overdraft seats, ci the
        license's CI pool (License.ci_seats: machine keys' seats, beside max_seats). With
        groups defined, every lease records its holder's groups (a maximum added later
        counts them)."""
        overdraft = self.overdraft(max_seats)
        if not (self.groups or self.reserve or self.max or overdraft or self.queue or ci_seats):
            return None
        script: dict[str, Any] = {
            "max": {m.group: m.seats for m in self.max},
            "res": [[r.group, r.seats] for r in self.reserve],
            "od": overdraft,
        }
        if ci_seats:
            script["ci"] = ci_seats
        if self.queue is not None:
            # n: most tickets; claim / keep: ms a held seat waits / a ticket lives unpolled;
            # prio: {group: rank} (lower first; others after every priority group)
            script["q"] = {"n": self.queue.max_length, "claim": self.queue.claim_window_s * 1000,
                           "keep": self.queue.poll_interval_s * 3000,
                           "prio": {g: rank for rank, g in enumerate(self.queue.priority)}}
        return script

    # -- the stored and the API form (the same JSON) -------------------------------------
    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.groups:
            body["groups"] = [g.as_json() for g in self.groups]
        if self.include:
            body["include"] = self.include.as_json()
        if self.exclude:
            body["exclude"] = self.exclude.as_json()
        if self.reserve:
            body["reserve"] = [{"group": r.group, "seats": r.seats} for r in self.reserve]
        if self.max:
            body["max"] = [{"group": m.group, "seats": m.seats} for m in self.max]
        if self.overdraft_ratio is not None:
            body["overdraft_ratio"] = self.overdraft_ratio
        elif self.overdraft_seats:
            body["overdraft_seats"] = self.overdraft_seats
        if self.queue is not None:
            body["queue"] = self.queue.as_json()
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any] | None) -> SeatPolicy:
        """From what `as_json` wrote (stored documents: already validated)."""
        if not body:
            return cls()

        def rule(part: Mapping[str, Any] | None) -> Rule:
            part = part or {}
            return Rule(tuple(part.get("groups", ())), tuple(part.get("users", ())), tuple(part.get("hardware", ())))

        def seats(items: Any) -> tuple[GroupSeats, ...]:
            return tuple(GroupSeats(i["group"], int(i["seats"])) for i in items or ())

        groups = tuple(
            Group(g["name"], tuple(g.get("uids", ())), tuple(d.lower() for d in g.get("domains", ())),
                  (g["claim"]["name"], g["claim"]["value"]) if g.get("claim") else None)
            for g in body.get("groups", ())
        )
        ratio = body.get("overdraft_ratio")
        return cls(groups=groups, include=rule(body.get("include")), exclude=rule(body.get("exclude")),
                   reserve=seats(body.get("reserve")), max=seats(body.get("max")),
                   overdraft_seats=int(body.get("overdraft_seats", 0)),
                   overdraft_ratio=float(ratio) if ratio is not None else None,
                   queue=QueuePolicy.from_json(body["queue"]) if body.get("queue") is not None else None)

    def problems(self, max_seats: int) -> list[str]:
        """Why this policy cannot apply to a license of `max_seats` (empty: it can)."""
        found: list[str] = []
        names = [g.name for g in self.groups]
        if len(names) > MAX_GROUPS:
            found.append(f"at most {MAX_GROUPS} groups")
        if len(set(names)) != len(names):
            found.append("group names must be unique")
        for group in self.groups:
            if not GROUP_NAME.fullmatch(group.name):
                found.append(f"group name {group.name!r}: 1-40 of a-z 0-9 _ . - (starting with a letter or digit)")
            if not (group.uids or group.domains or group.claim):
                found.append(f"group {group.name!r} has no members: give uids, domains or a claim")
            if group.claim is not None and (not CLAIM_NAME.fullmatch(group.claim[0])
                                            or group.claim[0] in RESERVED_CLAIMS):
                found.append(f"group {group.name!r}: claim {group.claim[0]!r} cannot define a group")
            if len(group.uids) > MAX_RULE_ITEMS or len(group.domains) > MAX_RULE_ITEMS:
                found.append(f"group {group.name!r}: at most {MAX_RULE_ITEMS} uids and domains")
        known = set(names)
        for label, rule in (("include", self.include), ("exclude", self.exclude)):
            unknown = [g for g in rule.groups if g not in known]
            if unknown:
                found.append(f"{label} names groups the policy does not define: {', '.join(sorted(unknown))}")
            if max(len(rule.groups), len(rule.users), len(rule.hardware)) > MAX_RULE_ITEMS:
                found.append(f"{label}: at most {MAX_RULE_ITEMS} groups, users and hardware ids each")
        if self.include.hardware:
            found.append("include names users and groups, not hardware (exclude a machine instead)")
        for label, items in (("reserve", self.reserve), ("max", self.max)):
            seen = [i.group for i in items]
            if len(set(seen)) != len(seen):
                found.append(f"{label} names a group twice")
            for item in items:
                if item.group not in known:
                    found.append(f"{label} names group {item.group!r}, which the policy does not define")
                if not 1 <= item.seats <= max_seats:
                    found.append(f"{label} for {item.group!r}: seats must be between 1 and max_seats ({max_seats})")
        reserved = sum(r.seats for r in self.reserve)
        if reserved > max_seats:
            found.append(f"reservations ({reserved} seats) exceed max_seats ({max_seats})")
        if self.overdraft_ratio is not None:
            if self.overdraft_seats:
                found.append("give overdraft_seats or overdraft_ratio, not both")
            if not (math.isfinite(self.overdraft_ratio) and 1.0 <= self.overdraft_ratio <= MAX_OVERDRAFT_RATIO):
                found.append(f"overdraft_ratio must be between 1 and {MAX_OVERDRAFT_RATIO:g} (1.25 for 1.25x)")
        elif not 0 <= self.overdraft_seats <= max_seats * int(MAX_OVERDRAFT_RATIO):
            found.append(f"overdraft_seats must be between 0 and {int(MAX_OVERDRAFT_RATIO)} x max_seats")
        if self.queue is not None:
            for name, (low, high) in QueuePolicy.BOUNDS.items():
                if not low <= getattr(self.queue, name) <= high:
                    found.append(f"queue.{name} must be between {low} and {high}")
            unknown = [g for g in self.queue.priority if g not in known]
            if unknown:
                found.append(f"queue.priority names groups the policy does not define: {', '.join(sorted(unknown))}")
            if len(set(self.queue.priority)) != len(self.queue.priority):
                found.append("queue.priority names a group twice")
            if self.queue.claim_window_s < self.queue.poll_interval_s:
                # a client polls once per interval: a shorter window is mostly missed
                found.append("queue.claim_window_s must be at least queue.poll_interval_s")
        return found
