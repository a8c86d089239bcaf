"""Reading .dev/functions.log between two points of a run.

The function server appends one JSON line per request (with its own `latency_ms`) and a
line `"message":"delegation certificate issued"` each time a process has KMS sign a
delegation certificate, i.e. one KMS AsymmetricSign call.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

KMS_MARKER = b'"delegation certificate issued"'


@dataclass
class LogSlice:
    kms_certificates: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    server_latency_ms: dict[str, list[float]] = field(default_factory=dict)
    error_lines: int = 0
    error_samples: list[str] = field(default_factory=list)
    other_lines: int = 0

    def server_percentiles(self, function: str) -> dict[str, float | None]:
        values = sorted(self.server_latency_ms.get(function, []))

        def pick(q: float) -> float | None:
            if not values:
                return None
            return round(values[min(len(values), max(1, math.ceil(q * len(values)))) - 1], 3)

        return {"p50": pick(0.5), "p99": pick(0.99), "count": len(values)}


class FunctionLog:
    def __init__(self, path: Path):
        self.path = path

    def offset(self) -> int:
        """Where the log ends now (only whole lines count: a partial last line comes later)."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(0, 2)
                end = handle.tell()
                back = min(end, 65536)
                handle.seek(end - back)
                tail = handle.read(back)
        except OSError:
            return 0
        cut = tail.rfind(b"\n")
        return end - back + cut + 1 if cut >= 0 else end - back

    def count_kms(self, start: int, end: int) -> int:
        """KMS certificate lines between two offsets, without parsing (the log may be large)."""
        if end <= start:
            return 0
        count, carry = 0, b""
        with open(self.path, "rb") as handle:
            handle.seek(start)
            left = end - start
            while left > 0:
                chunk = handle.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
                data = carry + chunk
                count += data.count(KMS_MARKER)
                # Keep a tail shorter than the marker: a marker split across two chunks is
                # counted once, with the next chunk, and none is counted twice.
                carry = data[-(len(KMS_MARKER) - 1):]
        return count

    def read(self, start: int, end: int) -> LogSlice:
        found = LogSlice()
        if end <= start:
            return found
        with open(self.path, "rb") as handle:
            handle.seek(start)
            data = handle.read(end - start)
        for line in data.splitlines():
            if KMS_MARKER in line:
                found.kms_certificates += 1
                continue
            if not line.startswith(b"{"):
                found.other_lines += 1  # e.g. gRPC core messages on stderr
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                found.other_lines += 1
                continue
            if entry.get("severity") == "ERROR" or (isinstance(entry.get("status"), int) and entry["status"] >= 500):
                found.error_lines += 1
                if len(found.error_samples) < 5:
                    found.error_samples.append(line[:300].decode(errors="replace"))
            function = entry.get("function")
            if function and "latency_ms" in entry:
                found.requests[function] = found.requests.get(function, 0) + 1
                found.server_latency_ms.setdefault(function, []).append(float(entry["latency_ms"]))
        return found
