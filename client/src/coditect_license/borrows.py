"""Files the SDK keeps per license key: borrow tokens (library + CLI) and CLI sessions.

Named by a hash of the license key (the key itself is never written), in the user's
cache dir, 0600:  borrows/<id>.json   sessions/<id>.json
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from coditect_license import paths


def key_id(license_key: str) -> str:
    return hashlib.sha256(b"coditect-license/key\0" + license_key.strip().encode()).hexdigest()[:32]


def borrow_file(license_key: str) -> Path:
    return paths.cache_dir() / "borrows" / f"{key_id(license_key)}.json"


def session_file(license_key: str) -> Path:
    return paths.cache_dir() / "sessions" / f"{key_id(license_key)}.json"


def load(path: Path) -> dict[str, Any] | None:
    value = paths.read_json(path)
    return value if isinstance(value, dict) and isinstance(value.get("token"), str) else None


def save(path: Path, record: dict[str, Any]) -> None:
    paths.write_json(path, record)


def forget(path: Path) -> bool:
    return paths.remove(path)
