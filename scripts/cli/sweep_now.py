"""sweep-now: run the dev stack's sweep by hand, as Cloud Scheduler would (OIDC token)."""

from __future__ import annotations

import json
import sys
import time

import httpx
import jwt

from cli.stack_config import STACK_FILE


def main() -> int:
    if not STACK_FILE.exists():
        raise SystemExit(f"sweep-now: no running dev stack in {STACK_FILE.parent} (start ./scripts/dev, or set "
                         "DEV_STATE_DIR to its --state-dir)")
    stack = json.loads(STACK_FILE.read_text())
    key = (STACK_FILE.parent / "scheduler-oidc-key.pem").read_bytes()
    now = int(time.time())
    token = jwt.encode({"iss": "https://accounts.google.com", "aud": stack["sweep_audience"], "sub": "sweep-now",
                        "email": stack["scheduler_service_account"], "email_verified": True,
                        "iat": now, "exp": now + 300}, key, algorithm="RS256", headers={"kid": stack["oidc_kid"]})
    answer = httpx.post(f"{stack['base_url']}/sweep", headers={"Authorization": f"Bearer {token}"}, timeout=120)
    print(json.dumps(answer.json(), indent=2))
    return 0 if answer.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
