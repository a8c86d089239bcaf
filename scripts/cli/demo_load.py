"""demo-load: a short scripted load on the running dev stack, so its usage reports have something to show.

    scripts/demo-load [--users 6] [--seconds 20] [--hold 2 6] [--license-key KEY]

Each simulated user (a made-up uid, an emulator ID token) loops until the time is up:
acquire a seat of the demo license (or --license-key), hold it a few seconds with
heartbeats, release it, pause. With more users than seats some are refused (409), which
the reports count. Prints what happened; only the local stack accepts these tokens.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

from cli.stack_config import STACK_FILE


def _post(base_url: str, path: str, token: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base_url}/{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo-load", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--users", type=int, default=6,
                        help="simulated users (default 6; the demo license has 3 seats)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long (default 20)")
    parser.add_argument("--hold", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN", "MAX"),
                        help="seconds a seat is held (default 2 6)")
    parser.add_argument("--license-key", help="default: the dev stack's demo license")
    args = parser.parse_args(argv)
    if not STACK_FILE.exists():
        parser.error(f"no dev stack: {STACK_FILE} does not exist (start ./scripts/dev)")
    facts = json.loads(STACK_FILE.read_text())
    base_url, key = facts["base_url"], args.license_key or facts["license_key"]

    from devstack.dev_tokens import emulator_id_token

    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def user(n: int) -> None:
        token = emulator_id_token(facts["project_id"], f"demo-user-{n}", email=f"demo-user-{n}@example.com")
        rng = random.Random(n)
        while time.monotonic() < deadline:
            status, body = _post(base_url, "acquire", token, {"license_key": key, "hardware_id": f"demo-hw-{n}"})
            with lock:
                outcomes[f"acquire {status}"] += 1
            if status in (200, 201):
                session = {"session_id": body["session_id"]}
                held_until = time.monotonic() + rng.uniform(*args.hold)
                while time.monotonic() < min(held_until, deadline):
                    time.sleep(min(1.0, max(0.0, held_until - time.monotonic())))
                    _post(base_url, "heartbeat", token, session)
                _post(base_url, "release", token, session)
            time.sleep(rng.uniform(0.5, 1.5))

    threads = [threading.Thread(target=user, args=(n,), daemon=True) for n in range(args.users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"demo-load: {args.users} users for {args.seconds:g} s on {base_url}: "
          + ", ".join(f"{name} x{count}" for name, count in sorted(outcomes.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
