"""The admin console's files (functions/console/web, built into dist/): served as built,
under a strict Content-Security-Policy, and its config.json made from the settings.

Only the assets the build's manifest lists are served (so no path ever reaches the file
system); each is read and gzip-compressed once per process. index.html gets a <base href>,
the console's own URL, so that its relative URLs resolve the same with or without a
trailing slash. index.html and config.json are
revalidated on every load (`no-cache`); the assets, whose names carry their content hash,
are kept for a year (`immutable`). No secret is served: the Firebase web API key is public
by design (it names the project to Firebase Auth; what a token may do is decided by the
functions), and the console holds nothing but the signed-in user's ID token, in memory.

The console and the API share one origin when deployed (https://<region>-<project>.
cloudfunctions.net/<env>-<name>), and locally (http://127.0.0.1:<port>/<name>): the API
needs no CORS, and connect-src 'self' covers it.
"""

from __future__ import annotations

import gzip
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.http.downloads import StaticFile

_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml",
                ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8"}
_FIREBASE_AUTH = ("https://identitytoolkit.googleapis.com", "https://securetoken.googleapis.com")
_GOOGLE_API_LOADER = "https://apis.google.com"
REVALIDATE = "no-cache"
FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class ConsoleConfig:
    project_id: str
    api_key: str | None  # the Firebase web API key (public); None: the emulator's
    auth_domain: str
    api: str  # where the functions are: a template with {name}, absolute or relative to the console
    auth_emulator: str | None  # host:port of the Firebase Auth emulator (the local stack only)
    base_url: str  # the console's own URL, ending in /: every relative URL of the page resolves from it

    def as_json(self) -> dict[str, Any]:
        return {"firebase": {"apiKey": self.api_key or "emulator-api-key", "authDomain": self.auth_domain,
                             "projectId": self.project_id},
                "authEmulator": f"http://{self.auth_emulator}" if self.auth_emulator else None,
                "api": self.api}

    def file(self) -> StaticFile:
        """config.json: what the page needs to sign in and find the functions."""
        return StaticFile(json.dumps(self.as_json(), separators=(",", ":")).encode(), "application/json", REVALIDATE)

    def content_security_policy(self) -> str:
        connect = ["'self'", *_FIREBASE_AUTH]
        api = urlsplit(self.api.replace("{name}", "x"))
        if api.scheme in ("http", "https") and api.netloc:
            connect.append(f"{api.scheme}://{api.netloc}")
        if self.auth_emulator:
            connect.append(f"http://{self.auth_emulator}")
        frames = [f"https://{self.auth_domain}"] + ([f"http://{self.auth_emulator}"] if self.auth_emulator else [])
        return "; ".join([
            # Google sign-in (signInWithPopup) loads Google's API loader, then Firebase Auth's
            # handler in a hidden frame of the auth domain (the emulator's, locally).
            "default-src 'none'", f"script-src 'self' {_GOOGLE_API_LOADER}", "style-src 'self'",
            "img-src 'self' data:", "connect-src " + " ".join(dict.fromkeys(connect)),
            "frame-src " + " ".join(frames), "form-action 'none'", "base-uri 'self'", "frame-ancestors 'none'",
            "object-src 'none'",
        ])

    def headers(self) -> dict[str, str]:
        """Every answer's security headers (the page's and its files')."""
        return {
            "Content-Security-Policy": self.content_security_policy(),
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            # Google sign-in opens a popup that must be able to hand its result back.
            "Cross-Origin-Opener-Policy": "same-origin-allow-popups",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
            "Strict-Transport-Security": "max-age=31536000",
        }


class ConsoleSite:
    def __init__(self, root: Path):
        """`root`: the built site (index.html, manifest.json, assets/)."""
        manifest = json.loads((root / "manifest.json").read_text())
        self._page = (root / "index.html").read_text()
        if "<head>" not in self._page:
            raise ValueError(f"{root / 'index.html'} has no <head> to put the page's base URL in")
        self._assets: dict[str, tuple[StaticFile, StaticFile]] = {}
        for entry in manifest["files"]:
            path = str(entry["path"])
            if path.startswith("assets/"):
                content = (root / path).read_bytes()
                media_type = _MEDIA_TYPES.get(Path(path).suffix, "application/octet-stream")
                self._assets[path.removeprefix("assets/")] = (
                    StaticFile(gzip.compress(content, mtime=0), media_type, FOREVER, gzipped=True),
                    StaticFile(content, media_type, FOREVER))

    def asset(self, name: str, *, accepts_gzip: bool) -> StaticFile | None:
        """assets/`name` as built (None: the build has no such file)."""
        pair = self._assets.get(name)
        return None if pair is None else pair[0] if accepts_gzip else pair[1]

    def page(self, base_url: str, *, accepts_gzip: bool) -> StaticFile:
        """index.html, its relative URLs resolving from `base_url` (the console's URL: deployed,
        the function cannot tell whether it was asked with a trailing slash)."""
        base = f'<head>\n<base href="{html.escape(base_url, quote=True)}">'
        content = self._page.replace("<head>", base, 1).encode()
        if accepts_gzip:
            return StaticFile(gzip.compress(content, mtime=0), _MEDIA_TYPES[".html"], REVALIDATE, gzipped=True)
        return StaticFile(content, _MEDIA_TYPES[".html"], REVALIDATE)
