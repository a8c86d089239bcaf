"""GET console/...: the admin console, a single-page app (functions/console/web; README, "The console").

Public: it serves files only. The page signs its user in with Firebase Auth and calls the
admin function with that user's ID token; nothing here knows who is signed in.
"""

from pathlib import Path

import functions_framework

from shared.errors import BackendUnavailable, NotFound
from shared.http import Call, HandlerResult, json_function
from shared.http.console_site import ConsoleConfig, ConsoleSite
from shared.runtime import runtime

_HERE = Path(__file__).resolve().parent
# Deployed, the bundle carries the built site as static/; in the repository it is built into web/dist.
_BUILT = next((p for p in (_HERE / "static", _HERE / "web" / "dist") if (p / "manifest.json").is_file()), None)
_site: ConsoleSite | None = None


def _config(call: Call) -> ConsoleConfig:
    settings = runtime().settings
    request = call.request
    return ConsoleConfig(
        project_id=settings.project_id, api_key=settings.console_firebase_api_key,
        auth_domain=settings.console_auth_domain or f"{settings.project_id}.firebaseapp.com",
        api=settings.console_api_url, auth_emulator=settings.auth_emulator_host if settings.auth_emulated else None,
        # Deployed, the function cannot see the path it is served under: Terraform says it.
        base_url=settings.console_url or f"{request.host_url.rstrip('/')}{request.script_root}/")


def _site_files() -> ConsoleSite:
    global _site
    if _BUILT is None:
        raise BackendUnavailable("console (not built: npm --prefix functions/console/web ci && "
                                 "npm --prefix functions/console/web run build)")
    if _site is None:
        _site = ConsoleSite(_BUILT)
    return _site


@functions_framework.http
@json_function("console", routes={"": ["GET"], "index.html": ["GET"], "config.json": ["GET"],
                                  "assets/{file}": ["GET"]}, public=True)
def console(call: Call) -> HandlerResult:
    config = _config(call)
    if call.route == "config.json":
        return 200, config.file(), config.headers()
    gzip = "gzip" in call.request.headers.get("Accept-Encoding", "")
    site = _site_files()
    if call.route == "assets/{file}":
        served = site.asset(call.params["file"], accepts_gzip=gzip)
        if served is None:
            raise NotFound(f"the console has no file assets/{call.params['file']}")
        return 200, served, config.headers()
    return 200, site.page(config.base_url, accepts_gzip=gzip), config.headers()
