"""Where the running dev stack says it is: <state dir>/stack.json, the state dir being
$DEV_STATE_DIR (./scripts/dev --state-dir) or .dev."""

from __future__ import annotations

import os
from pathlib import Path

STACK_FILE = Path(os.environ.get("DEV_STATE_DIR") or Path(__file__).resolve().parents[2] / ".dev") / "stack.json"
