"""Who holds a seat right now: Redis Lua scripts, one per operation.

keys.py names every key; replies.py decodes every script's answer; seat_table.py is the
hot path (acquire, heartbeat, release, counts); sweep_ledger.py is the sweep's side.
"""

from shared.seats.keys import LicenseKeys
from shared.seats.seat_table import SeatTable
from shared.seats.sweep_ledger import SweepLedger, SweepLock

__all__ = ["LicenseKeys", "SeatTable", "SweepLedger", "SweepLock"]
