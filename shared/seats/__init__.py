"""Who holds a seat right now: Redis Lua scripts, one per operation."""

from shared.seats.seat_table import (
    AcquireOutcome,
    HeartbeatOutcome,
    ReleaseOutcome,
    SeatCount,
    SeatTable,
    SessionEnd,
)

__all__ = ["AcquireOutcome", "HeartbeatOutcome", "ReleaseOutcome", "SeatCount", "SeatTable", "SessionEnd"]
