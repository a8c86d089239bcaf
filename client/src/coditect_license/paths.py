"""Where the SDK keeps files, per user, and how it writes them (atomically, 0600).

    config  credentials of the CLI (refresh token)     $CODITECT_LICENSE_CONFIG_DIR
            Linux/BSD: $XDG_CONFIG_HOME/coditect-license (~/.config/coditect-license)
            macOS: ~/Library/Application Support/coditect-license
            Windows: %APPDATA%\\coditect-license
    cache   jwks, sessions of the CLI, borrow tokens   $CODITECT_LICENSE_CACHE_DIR
            Linux/BSD: $XDG_CACHE_HOME/coditect-license (~/.cache/coditect-license)
            macOS: ~/Library/Caches/coditect-license
            Windows: %LOCALAPPDATA%\\coditect-license\\Cache
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from coditect_license import environment

APP = "coditect-license"


def config_dir() -> Path:
    explicit = os.environ.get(environment.CONFIG_DIR)
    if explicit:
        return Path(explicit)
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / APP
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / APP


def cache_dir() -> Path:
    explicit = os.environ.get(environment.CACHE_DIR)
    if explicit:
        return Path(explicit)
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / APP / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / APP
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / APP


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the user only (0600; folder 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json(path: Path, value: Any) -> None:
    write_private(path, json.dumps(value, indent=2, sort_keys=True).encode())


def read_json(path: Path) -> Any | None:
    """The JSON in `path`, or None when it is missing or unreadable (never raises)."""
    try:
        with open(path, "rb") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def remove(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
