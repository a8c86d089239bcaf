"""The licensing vocabulary: records and rules that need nothing but the standard library.

Every layer reads these names; none of them knows Redis, Firestore, KMS or HTTP.
"""

from shared.domain.events import AuditEvent
from shared.domain.licenses import (
    LEASE_TOKEN_MAX_S,
    License,
    LicenseBounds,
    Tenant,
)
from shared.domain.limits import Limit
from shared.domain.machine_keys import MachineKey
from shared.domain.policies import Group, GroupSeats, PolicyRefusal, Rule, SeatPolicy
from shared.domain.principal import MachineGrant, Principal
from shared.domain.sessions import EndReason, SessionEnd, SessionRecord

__all__ = [
    "LEASE_TOKEN_MAX_S",
    "AuditEvent",
    "EndReason",
    "Group",
    "GroupSeats",
    "License",
    "LicenseBounds",
    "Limit",
    "MachineGrant",
    "MachineKey",
    "PolicyRefusal",
    "Principal",
    "Rule",
    "SeatPolicy",
    "SessionEnd",
    "SessionRecord",
    "Tenant",
]
