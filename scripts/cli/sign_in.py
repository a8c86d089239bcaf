"""licensectl sign-in: an ID token for LICENSECTL_TOKEN, from an account's email and password.

The admin function wants a Firebase ID token of an owner or an admin; a person gets one by
signing in. This signs in through Firebase Auth's REST API (accounts:signInWithPassword,
what the Firebase web SDK calls) with the project's web API key, and prints the ID token
alone, so that

    export LICENSECTL_TOKEN=$(scripts/licensectl sign-in me@example.com --password-stdin \
        --api-key "$FIREBASE_WEB_API_KEY" <<< "$PASSWORD")

An ID token lives an hour. Against an emulator (--auth-emulator HOST:PORT or
FIREBASE_AUTH_EMULATOR_HOST; without --api-key: the running dev stack's) any key is accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

import httpx

from cli.errors import CliError, UsageError

COMMAND = "sign-in"
SIGN_IN_PATH = "identitytoolkit.googleapis.com/v1/accounts:signInWithPassword"
_PASSWORD_ENV = "LICENSECTL_PASSWORD"
# Firebase Auth's answers to a wrong sign-in, in words an operator can act on.
_REFUSALS = {
    "EMAIL_NOT_FOUND": "no account has this email",
    "INVALID_PASSWORD": "wrong password",
    "INVALID_LOGIN_CREDENTIALS": "wrong email or password",
    "USER_DISABLED": "this account is disabled",
    "TOO_MANY_ATTEMPTS_TRY_LATER": "too many attempts: Firebase Auth asks to try later",
}


def add_command(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    sub = command(COMMAND, "sign in with email and password; print the ID token (for LICENSECTL_TOKEN)")
    sub.add_argument("email")
    sub.add_argument("--password-stdin", action="store_true",
                     help=f"read the password from stdin's first line (else {_PASSWORD_ENV})")
    sub.add_argument("--api-key", default=os.environ.get("LICENSECTL_FIREBASE_API_KEY") or None,
                     help="the project's web API key (LICENSECTL_FIREBASE_API_KEY)")
    sub.add_argument("--auth-emulator", metavar="HOST:PORT",
                     help="sign in at this Firebase Auth emulator (default: FIREBASE_AUTH_EMULATOR_HOST)")


def _endpoint(args: argparse.Namespace) -> tuple[str, str]:
    """(the sign-in URL, the API key to send)."""
    emulator = args.auth_emulator or os.environ.get("FIREBASE_AUTH_EMULATOR_HOST") or None
    if emulator is None and args.api_key is None:
        from cli.admin_api import dev_stack, dev_stack_fact

        emulator = dev_stack_fact(dev_stack(), "firebase_auth_emulator_host")
    if emulator is not None:
        host, _, port = emulator.strip().rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(f"the Auth emulator is HOST:PORT (e.g. 127.0.0.1:9099), not {emulator!r}")
        return f"http://{emulator.strip()}/{SIGN_IN_PATH}", args.api_key or "emulator"
    return f"https://{SIGN_IN_PATH}", args.api_key


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = os.environ.get(_PASSWORD_ENV, "")
    if not password:
        raise UsageError(f"no password: pass --password-stdin (and the password on stdin) or set {_PASSWORD_ENV}")
    return password


def run(args: argparse.Namespace) -> int:
    url, key = _endpoint(args)
    password = _password(args)
    try:
        answer = httpx.post(url, params={"key": key}, timeout=30,
                            json={"email": args.email, "password": password, "returnSecureToken": True})
    except httpx.HTTPError as exc:
        raise CliError(f"Firebase Auth at {url.split('/identitytoolkit')[0]} did not answer: {exc}",
                       exit_code=3) from exc
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or "idToken" not in body:
        code = str((body.get("error") or {}).get("message", "")) if isinstance(body, dict) else ""
        reason = _REFUSALS.get(code.split(" ")[0], code or f"HTTP {answer.status_code}")
        raise CliError(f"signing in {args.email} failed: {reason}")
    if args.json:
        print(json.dumps({"id_token": body["idToken"], "uid": body.get("localId"), "email": body.get("email"),
                          "expires_in_s": int(body.get("expiresIn", 3600))}))
    else:
        print(body["idToken"])
    return 0
