"""System tier: functions served by real gunicorn + functions-framework processes."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def production_auth_server(stack, google_certs, tmp_path_factory):
    """The same functions, verifying ID tokens as in production (RS256 against served certs)."""
    log = tmp_path_factory.mktemp("logs") / "functions-prod-auth.log"
    server = stack.serve_functions(
        workers=1, threads=4, log_path=log,
        extra_env={"ID_TOKEN_CERTS_URL": google_certs.url, "AUTH_CLOCK_SKEW_S": "0"},
        unset_env=("FIREBASE_AUTH_EMULATOR_HOST",),
    )
    yield server
    server.stop()
