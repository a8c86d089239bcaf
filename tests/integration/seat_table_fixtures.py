"""What the seat-policy script tests share: fixed times, and a license whose table is
trusted (as after its first rebuild). Their fixtures `server` (one Redis 7 per module) and
`table` (a SeatTable over it) are tests/integration/conftest.py's.
"""

from __future__ import annotations

import secrets

from shared.seats import SeatTable

NOW = 1_795_000_000_000  # a realistic epoch-ms: checks cjson keeps integer precision
TTL = 60_000


def trusted_license(table: SeatTable) -> str:
    """A new license id whose table is trusted: acquires go straight to the script."""
    lic = "lic_" + "".join(secrets.choice("0123456789abcdefghjk") for _ in range(20))
    table.restore(lic, [], now_ms=NOW, ttl_ms=TTL, complete=True)
    return lic
