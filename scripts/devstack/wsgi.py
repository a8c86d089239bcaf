"""Every function of functions/ behind one WSGI app: /<name>/... goes to <name>.

Deployed, each function has its own URL; locally one gunicorn process serves them all
(`gunicorn devstack.wsgi:app`). Each function is loaded with functions-framework's own
`create_app`, exactly as on Cloud Run, so its error handling and request wrapping are
the real ones. `/acquire` is served as `/acquire/` (no redirect: curl -X POST would not
follow one).
"""

from __future__ import annotations

import json
from pathlib import Path

import functions_framework

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def _not_found(environ, start_response):
    body = json.dumps({"error": {"code": "NOT_FOUND", "message": "no function at this path"}}).encode()
    start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def build_app(functions_dir: Path = FUNCTIONS):
    apps = {
        folder.name: functions_framework.create_app(target=folder.name, source=str(folder / "main.py"))
        for folder in sorted(functions_dir.iterdir())
        if (folder / "main.py").is_file()
    }

    def dispatch(environ, start_response):
        path = environ.get("PATH_INFO", "") or "/"
        name, _, rest = path.lstrip("/").partition("/")
        target = apps.get(name)
        if target is None:
            return _not_found(environ, start_response)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + "/" + name
        environ["PATH_INFO"] = "/" + rest
        return target(environ, start_response)

    return dispatch


app = build_app()
