"""Which environment a CLI talks to: the process environment, else the running dev stack."""

from __future__ import annotations

import json
import os
from pathlib import Path

STACK_FILE = Path(os.environ.get("DEV_STATE_DIR") or Path(__file__).resolve().parents[2] / ".dev") / "stack.json"
_POINTERS = ("GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST", "REDIS_URL")


def use_configured_environment() -> str:
    """Point the library at an environment; returns a one-line description of it.

    With GOOGLE_CLOUD_PROJECT / FIRESTORE_EMULATOR_HOST / REDIS_URL set, those are used
    (any deployed environment, with Application Default Credentials). Otherwise the
    dev stack that ./scripts/dev is running, found through .dev/stack.json.
    """
    if any(os.environ.get(name) for name in _POINTERS):
        return f"project {os.environ.get('GOOGLE_CLOUD_PROJECT', '(default)')} from the environment"
    if not STACK_FILE.exists():
        raise SystemExit("no environment configured: set GOOGLE_CLOUD_PROJECT (deployed) or start ./scripts/dev")
    stack = json.loads(STACK_FILE.read_text())
    os.environ.update({
        "GOOGLE_CLOUD_PROJECT": stack["project_id"],
        "FIRESTORE_EMULATOR_HOST": stack["firestore_emulator_host"],
        "REDIS_URL": stack["redis_url"],
        "KMS_ENDPOINT": stack["kms_endpoint"],
        "LEASE_ROOT_KMS_KEY": stack["lease_root_kms_key"],
    })
    return f"the dev stack at {stack['base_url']}"
