"""Request bodies and query strings of the admin function (openapi.yaml), validated strictly.

Numeric bounds come from shared.domain.LicenseBounds, the one place they are defined;
a seat policy's from shared.domain.policies. A policy body is checked here for shape
(types, lengths, characters); what it means (known groups, seats within max_seats, one
overdraft form) is SeatPolicy.problems, run on the license it is for.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.domain import LicenseBounds
from shared.domain.anomalies import FLAG_ID
from shared.domain.anomalies import MAX as ANOMALY_MAX
from shared.domain.anomalies import WINDOW_S as ANOMALY_WINDOW_S
from shared.domain.machine_keys import MAX_LICENSES, NAME_MAX
from shared.domain.policies import (
    MAX_GROUPS,
    MAX_OVERDRAFT_RATIO,
    MAX_RULE_ITEMS,
    Group,
    GroupSeats,
    QueuePolicy,
    Rule,
    SeatPolicy,
)
from shared.domain.webhook_endpoints import (
    DEFAULT_ROTATION_OVERLAP_S,
    MAX_ROTATION_OVERLAP_S,
)
from shared.domain.webhook_endpoints import DESCRIPTION_MAX as WEBHOOK_DESCRIPTION_MAX
from shared.errors import InvalidRequest
from shared.ids import LICENSE_ID, MACHINE_KEY_ID, TENANT_ID, WEBHOOK_ID
from shared.licensing.provisioning import DOMAIN_NAME, normalise_domains

_TIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_TENANT_PATTERN = f"^{TENANT_ID.pattern}$"
_NO_CONTROLS = r"^[^\x00-\x1f\x7f]+$"  # text shown to people
# A vendor's support line: shown in users' tools, so no C0 or C1 control, and not blank.
SUPPORT_CONTACT = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"


def _support_contact() -> Any:
    return Field(default=None, min_length=1, max_length=LicenseBounds.SUPPORT_CONTACT_CHARS, pattern=SUPPORT_CONTACT)


def bounded(name: str, default: Any = ...) -> Any:
    """A pydantic field held to the license setting's bounds."""
    limits = LicenseBounds.BY_FIELD[name]
    return Field(default=default, ge=limits.low, le=limits.high)


def _list(default_factory: Any = None) -> Any:
    if default_factory is None:
        return Field(default=None, max_length=LicenseBounds.MAX_LIST_ITEMS)
    return Field(default_factory=default_factory, max_length=LicenseBounds.MAX_LIST_ITEMS)


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# -- seat policies (shared/domain/policies.py; the same JSON as SeatPolicy.as_json) ------------
# Shape here: types, lengths, characters. Group and claim names are held to a length here
# and to their form by SeatPolicy.problems, which says in words what is wrong with them.
# Uids, email addresses and hardware ids are stored and shown: no control characters
# (hardware ids are also joined with a newline inside Redis keys).
_Uid = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_NO_CONTROLS)]
_User = Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=_NO_CONTROLS)]
_HardwareId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_NO_CONTROLS)]
_GroupName = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=_NO_CONTROLS)]
_Domain = Annotated[str, StringConstraints(min_length=1, max_length=253)]
_EMAIL_LOCAL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}")


def _items(max_items: int = MAX_RULE_ITEMS) -> Any:
    return Field(default_factory=list, max_length=max_items)


class ClaimBody(_Body):
    name: str = Field(min_length=1, max_length=64, pattern=_NO_CONTROLS)
    value: str = Field(min_length=1, max_length=200, pattern=_NO_CONTROLS)


class GroupBody(_Body):
    name: _GroupName
    uids: list[_Uid] = _items()
    domains: list[_Domain] = _items()
    claim: ClaimBody | None = None


class RuleBody(_Body):
    groups: list[_GroupName] = _items()
    users: list[_User] = _items()
    """Uids, or email addresses (an entry with an @: kept in lower case, as it is matched)."""
    hardware: list[_HardwareId] = _items()


class GroupSeatsBody(_Body):
    group: _GroupName
    seats: int = Field(ge=1, le=LicenseBounds.MAX_SEATS.high)


class QueueBody(_Body):
    """The wait queue; bounds in words from SeatPolicy.problems (QueuePolicy.BOUNDS)."""

    max_length: int = Field(default=100, ge=1, le=1_000_000)
    claim_window_s: int = Field(default=30, ge=1, le=86_400)
    poll_interval_s: int = Field(default=10, ge=1, le=86_400)
    priority: list[_GroupName] = _items(MAX_GROUPS)


class PolicyBody(_Body):
    """A license's whole seat policy; what is left out is off (the default: a bare count)."""

    groups: list[GroupBody] = _items(MAX_GROUPS)
    include: RuleBody = Field(default_factory=RuleBody)
    exclude: RuleBody = Field(default_factory=RuleBody)
    reserve: list[GroupSeatsBody] = _items(MAX_GROUPS)
    max: list[GroupSeatsBody] = _items(MAX_GROUPS)
    overdraft_seats: int = Field(default=0, ge=0, le=LicenseBounds.MAX_SEATS.high * int(MAX_OVERDRAFT_RATIO))
    overdraft_ratio: float | None = Field(default=None, allow_inf_nan=False)
    queue: QueueBody | None = None

    def policy(self) -> SeatPolicy:
        """The SeatPolicy: domains normalised, email addresses in lower case. InvalidRequest
        (field `policy`) for a domain or an email address that is not one, or for both
        overdraft forms. Whether it fits a license is SeatPolicy.problems(max_seats)."""
        if {"overdraft_seats", "overdraft_ratio"} <= self.model_fields_set:
            raise InvalidRequest("policy: give overdraft_seats or overdraft_ratio, not both", field="policy")
        groups = tuple(
            Group(g.name, tuple(g.uids),
                  normalise_domains(g.domains, field="policy", what=f"policy: the domains of group {g.name!r}"),
                  (g.claim.name, g.claim.value) if g.claim is not None else None)
            for g in self.groups)
        return SeatPolicy(
            groups=groups, include=_rule(self.include, "include"), exclude=_rule(self.exclude, "exclude"),
            reserve=tuple(GroupSeats(r.group, r.seats) for r in self.reserve),
            max=tuple(GroupSeats(m.group, m.seats) for m in self.max),
            overdraft_seats=self.overdraft_seats, overdraft_ratio=self.overdraft_ratio,
            queue=None if self.queue is None else QueuePolicy(
                max_length=self.queue.max_length, claim_window_s=self.queue.claim_window_s,
                poll_interval_s=self.queue.poll_interval_s, priority=tuple(self.queue.priority)),
        )


def _user(entry: str, where: str) -> str:
    """A uid as given; an email address (it has an @) in lower case, as it is matched."""
    if "@" not in entry:
        if len(entry) > 128:
            raise InvalidRequest(f"policy: {where}.users: a uid has at most 128 characters", field="policy")
        return entry
    local, _, domain = entry.rpartition("@")
    if not (_EMAIL_LOCAL.fullmatch(local) and DOMAIN_NAME.fullmatch(domain.lower())):
        raise InvalidRequest(f"policy: {where}.users: {entry!r} is neither a uid nor an email address",
                             field="policy")
    return entry.lower()


def _rule(body: RuleBody, where: str) -> Rule:
    return Rule(tuple(body.groups), tuple(_user(u, where) for u in body.users), tuple(body.hardware))


class AnomalyRuleBody(_Body):
    """One conflict-detection rule: `max` 0 switches it off (shared/domain/anomalies.py)."""

    max: int | None = Field(default=None, ge=ANOMALY_MAX[0], le=ANOMALY_MAX[1])
    window_s: int | None = Field(default=None, ge=ANOMALY_WINDOW_S[0], le=ANOMALY_WINDOW_S[1])


class AnomalyRulesBody(_Body):
    """The rules to change (the others keep what they are)."""

    hardware_per_user: AnomalyRuleBody | None = None
    users_per_hardware: AnomalyRuleBody | None = None
    addresses_per_session: AnomalyRuleBody | None = None
    grants_per_user: AnomalyRuleBody | None = None

    def changes(self) -> dict[str, dict[str, int]]:
        return {name: rule.model_dump(exclude_none=True) for name in self.model_fields_set
                if (rule := getattr(self, name)) is not None}


def policy_of(body: PolicyBody | None) -> SeatPolicy:
    """`policy: null` (or `{}`): the default policy."""
    return body.policy() if body is not None else SeatPolicy()


class CreateTenantRequest(_Body):
    id: str | None = Field(default=None, min_length=3, max_length=63, pattern=_TENANT_PATTERN)
    name: str = Field(min_length=1, max_length=200, pattern=_NO_CONTROLS)


class CreateLicenseRequest(_Body):
    tenant: str | None = Field(default=None, min_length=3, max_length=63, pattern=_TENANT_PATTERN)
    max_seats: int = bounded("max_seats")
    tier: str = Field(min_length=1, max_length=64, pattern=_TIER_PATTERN)
    features: list[str] = _list(list)
    expires_at: str | None = None
    lease_ttl_s: int | None = bounded("lease_ttl_s", None)
    heartbeat_interval_s: int | None = bounded("heartbeat_interval_s", None)
    allowed_domains: list[str] = _list(list)
    revive_window_s: int = bounded("revive_window_s", 0)
    max_sessions_per_user: int = bounded("max_sessions_per_user", 0)
    offline_grace_s: int = bounded("offline_grace_s", 0)
    max_borrow_s: int = bounded("max_borrow_s", 0)
    policy: PolicyBody | None = None
    """Who may hold the seats, and which (default: any user, a bare count)."""
    ci_seats: int = bounded("ci_seats", 0)
    """The CI pool: seats for machine keys beside max_seats (0: none)."""
    support_contact: str | None = _support_contact()


class UpdateLicenseRequest(_Body):
    """Only the fields present change; `expires_at: null` removes the expiry; `policy`
    replaces the whole seat policy (`null` or `{}`: the default)."""

    max_seats: int | None = bounded("max_seats", None)
    lease_ttl_s: int | None = bounded("lease_ttl_s", None)
    heartbeat_interval_s: int | None = bounded("heartbeat_interval_s", None)
    expires_at: str | None = None
    suspended: bool | None = None
    tier: str | None = Field(default=None, min_length=1, max_length=64, pattern=_TIER_PATTERN)
    features: list[str] | None = _list()
    allowed_domains: list[str] | None = _list()
    revive_window_s: int | None = bounded("revive_window_s", None)
    max_sessions_per_user: int | None = bounded("max_sessions_per_user", None)
    offline_grace_s: int | None = bounded("offline_grace_s", None)
    max_borrow_s: int | None = bounded("max_borrow_s", None)
    policy: PolicyBody | None = None
    ci_seats: int | None = bounded("ci_seats", None)
    support_contact: str | None = _support_contact()
    """`null` removes the support line."""
    anomaly_rules: AnomalyRulesBody | None = None
    """Conflict detection's thresholds: the rules named change, the others stay."""


class CreateMachineKeyRequest(_Body):
    """A machine key (shared/domain/machine_keys.py) for some licenses of one tenant."""

    name: str = Field(min_length=1, max_length=NAME_MAX, pattern=_NO_CONTROLS)
    licenses: list[Annotated[str, StringConstraints(pattern=f"^{LICENSE_ID.pattern}$")]] = Field(
        min_length=1, max_length=MAX_LICENSES)
    mode: Literal["seat", "validate"] = "seat"


_EVENT_TYPES = Literal[
    "license.created", "license.updated", "license.suspended", "license.resumed", "license.revoked",
    "license.expiring", "license.expired", "seats.exhausted", "seats.overage", "session.force_released",
    "queue.long_wait", "key.created", "key.revoked", "anomaly.detected"]
"""shared/domain/notifications.py NOTIFICATION_TYPES (a test keeps the two the same)."""
_EVENT_TYPE_COUNT = 14


class CreateWebhookRequest(_Body):
    """A webhook endpoint (shared/domain/webhook_endpoints.py) of one tenant."""

    url: str = Field(min_length=8, max_length=2048)
    events: list[_EVENT_TYPES] = Field(default_factory=list, max_length=_EVENT_TYPE_COUNT)
    description: str = Field(default="", max_length=WEBHOOK_DESCRIPTION_MAX, pattern=r"^[^\x00-\x1f\x7f]*$")
    tenant: str | None = Field(default=None, pattern=_TENANT_PATTERN)
    """The owner names the tenant; an admin's endpoint is its own tenant's."""


class UpdateWebhookRequest(_Body):
    url: str | None = Field(default=None, min_length=8, max_length=2048)
    events: list[_EVENT_TYPES] | None = Field(default=None, max_length=_EVENT_TYPE_COUNT)
    description: str | None = Field(default=None, max_length=WEBHOOK_DESCRIPTION_MAX,
                                    pattern=r"^[^\x00-\x1f\x7f]*$")
    enabled: bool | None = None


class RotateWebhookRequest(_Body):
    overlap_s: int = Field(default=DEFAULT_ROTATION_OVERLAP_S, ge=0, le=MAX_ROTATION_OVERLAP_S)
    """How long the secret before keeps signing beside the new one (0: stops at once)."""


# -- query strings (parsed by the function layer: shared.http Call.query) ------------------
_LICENSE_PATTERN = f"^{LICENSE_ID.pattern}$"
_MAX_PAGE = 500


class _Query(BaseModel):
    # Query values arrive as text: numbers are converted (lax); other parameters are ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)


class TenantsQuery(_Query):
    limit: int = Field(default=100, ge=1, le=_MAX_PAGE)
    after: str | None = Field(default=None, pattern=_TENANT_PATTERN)


class LicensesQuery(_Query):
    tenant: str | None = Field(default=None, pattern=_TENANT_PATTERN)
    limit: int = Field(default=100, ge=1, le=_MAX_PAGE)
    after: str | None = Field(default=None, pattern=_LICENSE_PATTERN)


_WHEN = r"^\d{4}-\d{2}-\d{2}([Tt ][0-9:.]+([Zz]|[+-]\d{2}:\d{2}))?$"


class EventsQuery(_Query):
    """The audit log, newest first: of a license, a tenant (the owner's choice, or all), of
    one type and/or one actor (a user's uid), from and to a time; `after`: the last event
    id of the page before."""

    license: str | None = Field(default=None, pattern=_LICENSE_PATTERN)
    tenant: str | None = Field(default=None, pattern=_TENANT_PATTERN)
    type: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_.-]{0,63}$")
    actor: str | None = Field(default=None, min_length=1, max_length=128, pattern=_NO_CONTROLS)
    from_: str | None = Field(default=None, alias="from", pattern=_WHEN, max_length=40)
    to: str | None = Field(default=None, pattern=_WHEN, max_length=40)
    after: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:~-]{1,300}$")
    limit: int = Field(default=100, ge=1, le=_MAX_PAGE)


class UsageQuery(_Query):
    days: int = Field(default=30, ge=1, le=400)


"""A report bound: a UTC date (its midnight) or an RFC 3339 time with its zone."""


class _ReportWindow(_Query):
    from_: str | None = Field(default=None, alias="from", pattern=_WHEN, max_length=40)
    to: str | None = Field(default=None, pattern=_WHEN, max_length=40)
    format: Literal["json", "csv"] | None = None


class ReportQuery(_ReportWindow):
    granularity: Literal["hour", "day"] = "day"


class UsersReportQuery(_ReportWindow):
    sort: Literal["seat_hours", "sessions", "peak_sessions", "last_seen", "uid"] = "seat_hours"
    order: Literal["asc", "desc"] | None = None
    limit: int = Field(default=100, ge=1, le=_MAX_PAGE)
    after: int = Field(default=0, ge=0, le=1_000_000)
    """How many rows to skip: the `next` of the page before."""


class TenantReportQuery(_ReportWindow):
    tenant: str | None = Field(default=None, pattern=_TENANT_PATTERN)


class StatementQuery(_Query):
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")


class WebhooksQuery(_Query):
    tenant: str | None = Field(default=None, pattern=_TENANT_PATTERN)
    limit: int = Field(default=100, ge=1, le=_MAX_PAGE)
    after: str | None = Field(default=None, pattern=f"^{WEBHOOK_ID.pattern}$")


_FLAG_ID = f"^{FLAG_ID.pattern}$"


class AnomaliesQuery(_Query):
    """Conflict flags: `state` open or acknowledged (default: both)."""

    tenant: str | None = Field(default=None, pattern=_TENANT_PATTERN)
    license: str | None = Field(default=None, pattern=_LICENSE_PATTERN)
    state: Literal["open", "acknowledged"] | None = None
    limit: int = Field(default=100, ge=1, le=_MAX_PAGE)
    after: str | None = Field(default=None, pattern=_FLAG_ID)


class AcknowledgeAnomalyRequest(_Body):
    note: str | None = Field(default=None, min_length=1, max_length=500, pattern=_NO_CONTROLS)
    """Why it is acknowledged (what was found, what was done), for the audit log."""


class DeliveriesQuery(_Query):
    limit: int = Field(default=20, ge=1, le=100)


class KeysQuery(_Query):
    tenant: str | None = Field(default=None, pattern=_TENANT_PATTERN)
    limit: int = Field(default=100, ge=1, le=_MAX_PAGE)
    after: str | None = Field(default=None, pattern=f"^{MACHINE_KEY_ID.pattern}$")
