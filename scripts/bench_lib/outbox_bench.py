"""scripts/bench-outbox: what publishing notifications costs (the sweep's notification step).

Starts its own stack (Redis, Firestore emulator, Pub/Sub emulator), records `--events`
notifiable audit events (force-releases, as the admin function records them: pending),
then runs the sweep's step alone (shared/licensing/notification_outbox.py) and prints
the events published per second, the Firestore writes it made (one mark per event) and
that a second run publishes nothing. Times are the emulators' on this machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from dataclasses import replace

from bench_lib.report import targets_section, verdict

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench-outbox", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="notifiable events recorded (default 5000)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.events <= 0:
        parser.error("--events must be > 0")

    from devstack.stack import LocalStack
    from shared.config import Settings
    from shared.domain import AuditEvent
    from shared.runtime import Runtime

    with LocalStack.start() as stack:
        stack.apply_env()
        rt = Runtime(replace(Settings.from_env(), project_id=f"demo-outbox-{secrets.token_hex(3)}"))
        print(f"scripts/bench-outbox --events {args.events}   (nproc {os.cpu_count()})\n"
              f"  pubsub: {stack.components()['pubsub']['describe']}", flush=True)
        started = time.perf_counter()
        for first in range(0, args.events, 250):
            batch = rt.firestore_client.batch()
            for i in range(first, min(first + 250, args.events)):
                rt.firestore._add_event(batch, AuditEvent(f"bench-{i:07d}", "bench", f"lic_{i:020d}",
                                                          "force-release", "admin", 1_800_000_000_000 + i))
            batch.commit()
        print(f"setup: {args.events} pending events in {time.perf_counter() - started:.1f} s", flush=True)
        lock = rt.sweep_ledger.lock()
        assert lock.acquire(ttl_ms=600_000)
        try:
            t0 = time.perf_counter()
            published, writes = rt.notification_outbox.publish_pending(lock, deadline=time.monotonic() + 600)
            wall = time.perf_counter() - t0
            again, again_writes = rt.notification_outbox.publish_pending(lock, deadline=time.monotonic() + 60)
        finally:
            lock.release()
        rate = published / wall if wall else 0.0
        print(f"(1) published {published} in {wall:.2f} s = {rate:,.0f} events/s; Firestore writes {writes} "
              f"({writes / max(published, 1):.2f} per event)", flush=True)
        print(f"(2) a second run: published {again}, writes {again_writes}", flush=True)
        rows = [
            ["(1) events published", f"{published:,}", f"{args.events:,} (all)", verdict(published == args.events)],
            ["(1) Firestore writes per event published", f"{writes / max(published, 1):.2f}", "1 (its mark)",
             verdict(writes == published)],
            ["(1) events published per second (emulators)", f"{rate:,.0f}", "(reported)", ""],
            ["(2) a second run publishes nothing", f"{again} / {again_writes}", "0 / 0",
             verdict(again == 0 and again_writes == 0)],
        ]
        print("\n".join(targets_section(rows)), flush=True)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump({"events": args.events, "published": published, "wall_s": round(wall, 3),
                           "writes": writes, "again": again}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
