"""What each seat script answers, decoded: one typed outcome and one decoder per script.

The scripts' contract comments (lua/*.lua) list every reply; these decoders are the only
code that reads reply positions.
"""

from __future__ import annotations

import json
from typing import Any

from shared.domain import EndReason, SessionEnd
from shared.domain.leases import (
    AcquireOutcome,
    HeartbeatOutcome,
    LeaseRecord,
    QueueTicket,
    ReleaseOutcome,
    SeatCount,
    SweepBatch,
)
from shared.seats.keys import HOLD_PREFIX
from shared.seats.redis_calls import text


def _flag_at(reply: list[Any], index: int) -> bool:
    """A trailing 0|1 of a reply (a refusal built by the prelude may stop before it: 0)."""
    return len(reply) > index and int(reply[index]) == 1


def decode_acquire(reply: list[Any], *, now_ms: int) -> AcquireOutcome:
    """acquire_seat.lua"""
    kind = text(reply[0])
    if kind == "GRANTED":
        return AcquireOutcome("GRANTED", text(reply[1]), int(reply[2]), int(reply[3]), int(reply[4]), now_ms,
                              overage=int(reply[5]) == 1, reserved_for=text(reply[6]), waited_ms=int(reply[7]),
                              ci=_flag_at(reply, 8))
    if kind == "EXISTING":
        return AcquireOutcome("EXISTING", text(reply[1]), int(reply[2]), int(reply[3]), int(reply[4]), int(reply[5]),
                              overage=int(reply[6]) == 1, reserved_for=text(reply[7]), ci=_flag_at(reply, 8))
    if kind == "FULL":
        return AcquireOutcome("FULL", used=int(reply[1]), max_seats=int(reply[2]), earliest_expiry_ms=int(reply[3]),
                              reserved_idle=int(reply[4]), overdraft=int(reply[5]), waiting=int(reply[6]),
                              queue_full=int(reply[7]) == 1, ci=_flag_at(reply, 8))
    if kind == "QUEUED":
        return AcquireOutcome("QUEUED", ticket=text(reply[1]), position=int(reply[2]), queue_length=int(reply[3]))
    if kind == "TICKET_GONE":
        return AcquireOutcome("TICKET_GONE")
    if kind == "USER_LIMIT":
        return AcquireOutcome("USER_LIMIT", used=int(reply[1]), max_seats=int(reply[2]))
    if kind == "GROUP_LIMIT":
        return AcquireOutcome("GROUP_LIMIT", group=text(reply[1]), used=int(reply[2]), max_seats=int(reply[3]))
    if kind == "REBUILD":
        return AcquireOutcome("REBUILD")
    return AcquireOutcome("STALE")


def decode_heartbeat(reply: list[Any]) -> HeartbeatOutcome:
    """heartbeat_seat.lua"""
    kind = text(reply[0])
    if kind == "OK":
        return HeartbeatOutcome("OK", int(reply[1]), text(reply[2]), text(reply[3]), int(reply[4]),
                                overage=int(reply[5]) == 1, ci=_flag_at(reply, 6))
    if kind == "REVIVED":
        return HeartbeatOutcome("REVIVED", int(reply[1]), text(reply[2]), text(reply[3]), int(reply[4]),
                                expired_ms=int(reply[5]), overage=int(reply[6]) == 1, ci=_flag_at(reply, 7))
    if kind == "ENDED":
        return HeartbeatOutcome("ENDED", end_state=text(reply[1]))
    if kind == "UNKNOWN":
        return HeartbeatOutcome("UNKNOWN")
    if kind == "FORBIDDEN":
        return HeartbeatOutcome("FORBIDDEN")
    if kind == "REBUILD":
        return HeartbeatOutcome("REBUILD")
    if kind == "PROOF":
        return HeartbeatOutcome("PROOF")
    return HeartbeatOutcome("STALE")


def decode_release(reply: list[Any], *, session_id: str) -> ReleaseOutcome:
    """release_seat.lua"""
    kind = text(reply[0])
    if kind in ("ENDED", "ALREADY"):
        end = SessionEnd(
            session_id=session_id, state=EndReason(text(reply[1])), uid=text(reply[2]), hardware_id=text(reply[3]),
            acquired_ms=int(reply[4]), last_heartbeat_ms=int(reply[5]), ended_ms=int(reply[6]),
            held_until_ms=int(reply[7]) or None,
        )
        return ReleaseOutcome("ENDED" if kind == "ENDED" else "ALREADY", end)
    if kind == "UNKNOWN":
        return ReleaseOutcome("UNKNOWN")
    if kind == "FORBIDDEN":
        return ReleaseOutcome("FORBIDDEN")
    if kind == "REBUILD":
        return ReleaseOutcome("REBUILD")
    return ReleaseOutcome("ROLLED_BACK")


def decode_count(reply: list[Any]) -> SeatCount:
    """count_seats.lua"""
    if text(reply[0]) == "STALE":
        return SeatCount("STALE")
    if text(reply[0]) == "REBUILD":
        return SeatCount("REBUILD")
    earliest = int(reply[2])
    return SeatCount("OK", int(reply[1]), None if earliest < 0 else earliest, ci_used=int(reply[3]))


def parse_lease_record(member: bytes | str, raw: bytes | str) -> LeaseRecord:
    """A record of a license's sessions hash (a hold's member carries HOLD_PREFIX)."""
    rec = json.loads(raw)
    shown = json.loads(rec["m"]) if isinstance(rec.get("m"), str) else {}
    return LeaseRecord(text(member).removeprefix(HOLD_PREFIX), rec["u"], rec["h"], int(rec["a"]), int(rec["b"]),
                       int(rec["e"]), rec["s"], int(rec["x"]) if "x" in rec else None,
                       int(rec["o"]) if "o" in rec else None, ci=bool(rec.get("ci")), overage=bool(rec.get("ov")),
                       shown=shown if isinstance(shown, dict) else {})


def _pairs(flat: list[Any]) -> list[LeaseRecord]:
    return [parse_lease_record(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def decode_sweep_batch(reply: list[Any]) -> SweepBatch:
    """sweep_license.lua"""
    if not isinstance(reply[0], int) and text(reply[0]) == "REBUILD":
        return SweepBatch(0, 0, 0, [], [], needs_rebuild=True)
    return SweepBatch(int(reply[0]), int(reply[1]), int(reply[2]), _pairs(reply[3]), _pairs(reply[4]))


def decode_restore(reply: list[Any]) -> list[str] | None:
    """restore_seats.lua: one outcome per entry, or None for a table trusted already."""
    outcomes = [text(outcome) for outcome in reply]
    return None if outcomes == ["TRUSTED"] else outcomes


def parse_ticket(ticket: bytes | str, raw: bytes | str, position: int = 0) -> QueueTicket:
    """A ticket of a license's tickets hash (see the prelude)."""
    data = json.loads(text(raw))
    return QueueTicket(
        ticket=text(ticket), position=position, uid=data["u"], hardware_id=data["h"],
        groups=tuple(data.get("g") or ()), queued_ms=int(data["a"]), alive_until_ms=int(data["k"]),
        held_until_ms=int(data["c"]) if data.get("c") else None,
    )


def decode_queue(reply: list[Any]) -> list[QueueTicket]:
    """queue_tickets.lua"""
    return [parse_ticket(tid, raw, position)
            for position, (tid, raw) in enumerate(zip(reply[::2], reply[1::2], strict=True), start=1)]
