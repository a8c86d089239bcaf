"""The console function: the page and its files as built, under a strict CSP, cached as
their names allow, and config.json from the settings; nothing else is served."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILT = REPO / "functions" / "console" / "web" / "dist"


def _assets() -> list[str]:
    return [f["path"] for f in json.loads((BUILT / "manifest.json").read_text())["files"]
            if f["path"].startswith("assets/")]


def test_the_page_is_served_with_its_base_url_under_a_strict_policy(function_clients):
    console = function_clients["console"]
    page = console.get("/", headers={"Accept-Encoding": "identity"})
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    html = page.get_data(as_text=True)
    assert '<base href="http://localhost/">' in html  # the URL it was asked at (locally)
    policy = page.headers["Content-Security-Policy"]
    for part in ("default-src 'none'", "script-src 'self' https://apis.google.com;", "style-src 'self';",
                 "frame-src https://demo-coditect.firebaseapp.com http://127.0.0.1:9099;", "frame-ancestors 'none'",
                 "object-src 'none'", "base-uri 'self'", "form-action 'none'"):
        assert part in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert re.search(r"connect-src 'self' https://identitytoolkit\.googleapis\.com "
                     r"https://securetoken\.googleapis\.com http://127\.0\.0\.1:9099", policy), policy
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    # every script and style of the page is a hashed file of its own (none inline)
    assert "<script>" not in html and "style=" not in html
    for src in re.findall(r'(?:src|href)="(assets/[^"]+)"', html):
        assert src in _assets()


def test_assets_are_cached_for_good_and_compressed_and_nothing_else_is_served(function_clients):
    console = function_clients["console"]
    for path in _assets():
        plain = console.get(f"/{path}", headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200 and plain.get_data() == (BUILT / path).read_bytes()
        assert plain.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert plain.headers["Content-Type"].count("charset") == (0 if path.endswith((".png", ".svg")) else 1)
        packed = console.get(f"/{path}", headers={"Accept-Encoding": "gzip, br"})
        assert packed.headers["Content-Encoding"] == "gzip" and gzip.decompress(packed.get_data()) == plain.get_data()
    js = sum(len(console.get(f"/{p}", headers={"Accept-Encoding": "gzip"}).get_data()) for p in _assets()
             if p.endswith(".js"))
    assert js < 300 * 1024, f"{js} bytes of JavaScript, compressed"
    for path in ("/assets/nope.js", "/assets/..%2Fmanifest.json", "/manifest.json", "/assets/", "/x/y"):
        answer = console.get(path)
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "NOT_FOUND", path
    assert console.post("/").status_code == 405


def test_config_tells_the_page_how_to_sign_in_and_where_the_functions_are(function_clients, rt):
    answer = function_clients["console"].get("/config.json")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-cache"
    assert answer.get_json() == {
        "firebase": {"apiKey": "emulator-api-key", "authDomain": f"{rt.settings.project_id}.firebaseapp.com",
                     "projectId": rt.settings.project_id},
        "authEmulator": "http://127.0.0.1:9099", "api": "../{name}"}
