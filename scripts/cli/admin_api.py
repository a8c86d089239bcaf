"""The admin function, as licensectl finds and calls it.

Where (--base-url / LICENSECTL_BASE_URL), one of:
    a template with {name}     https://europe-west1-P.cloudfunctions.net/staging-{name}
                               (Terraform's `function_url_template`): {name} becomes `admin`
    the admin function's URL   https://europe-west1-P.cloudfunctions.net/staging-admin,
                               https://staging-admin-<hash>-ew.a.run.app (a run.app host is one
                               function), or any URL whose last path segment is `admin` or
                               ends in `-admin` (http://127.0.0.1:8080/admin)
    a base URL                 http://127.0.0.1:8080: every function at <base>/<name> (the dev
                               stack), so the admin function is <base>/admin
Neither: the running dev stack (its stack.json), with a local owner token.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from typing import Any

import httpx

from cli.errors import CliError, UsageError
from cli.stack_config import STACK_FILE

FUNCTION = "admin"
_TOKEN = re.compile(r"[\x21-\x7e]+")  # an ID token is a JWT: printable ASCII, no spaces
_RATE_LIMIT_RETRIES = 3
_LONGEST_WAIT_S = 10


def admin_function_url(given: str) -> str:
    """The admin function's own URL (no trailing slash) for a --base-url in any of the forms above."""
    text = given.strip()
    templated = "{name}" in text
    text = text.replace("{name}", FUNCTION)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--base-url {given!r} is not an http(s) URL (e.g. https://REGION-PROJECT.cloudfunctions.net/"
                         "ENV-{name}, or http://127.0.0.1:8080 for the dev stack)")
    if parts.query or parts.fragment or "{" in text or "}" in text:
        raise UsageError(f"--base-url {given!r}: no query or fragment, and no placeholder other than {{name}}")
    path = parts.path.rstrip("/")
    url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    last = path.rsplit("/", 1)[-1]
    if templated or last == FUNCTION or last.endswith(f"-{FUNCTION}"):
        return url
    host = parts.hostname
    if host.endswith(".run.app"):
        return url  # a Cloud Run URL serves one function: this must be the admin function's
    if host.endswith(".cloudfunctions.net"):
        named = f"the function {last!r}, not the admin function" if last else "no function"
        raise UsageError(f"--base-url {given} names {named}: each function has its own URL there; pass "
                         f"https://{host}/ENV-admin, or the template https://{host}/ENV-{{name}}")
    return f"{url}/{FUNCTION}"


def dev_stack() -> dict[str, Any]:
    """The running dev stack's stack.json (./scripts/dev writes it)."""
    if not STACK_FILE.exists():
        raise CliError(f"no environment: pass --base-url (or LICENSECTL_BASE_URL), or start ./scripts/dev "
                       f"(no running dev stack in {STACK_FILE.parent}; DEV_STATE_DIR names another stack's "
                       "--state-dir)")
    try:
        stack = json.loads(STACK_FILE.read_text())
        if not isinstance(stack, dict):
            raise ValueError("not a JSON object")
        return stack
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the dev stack's {STACK_FILE}: {exc}") from None


def dev_stack_fact(stack: dict[str, Any], name: str) -> str:
    value = stack.get(name)
    if not isinstance(value, str) or not value:
        raise CliError(f"the dev stack's {STACK_FILE} has no {name!r}: is it a stack.json ./scripts/dev wrote?")
    return value


def target(base_url: str | None, token: str | None) -> tuple[str, str]:
    """(the admin function's URL, the bearer token) from --base-url/--token or the dev stack."""
    if base_url is None:
        stack = dev_stack()
        base_url = dev_stack_fact(stack, "base_url")
        if token is None:
            from devstack.dev_tokens import emulator_id_token

            # The dev stack seeds this account (scripts/devstack/dev.py LICENSECTL_ACCOUNT).
            token = emulator_id_token(dev_stack_fact(stack, "project_id"), "licensectl",
                                      email="operator@example.com", role="owner")
    url = admin_function_url(base_url)
    if token is None:
        raise UsageError("pass --token (or LICENSECTL_TOKEN): a Firebase ID token of an account with role admin "
                         "or owner (grant one with `licensectl grant-role`)")
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[len("bearer "):].strip()
    if not _TOKEN.fullmatch(token):
        raise UsageError("--token is not an ID token (a JWT: printable ASCII without spaces)")
    return url, token


def segment(value: str) -> str:
    """One path segment, quoted: an id typed with a '/' or '?' stays inside its segment."""
    return urllib.parse.quote(value, safe="")


class AdminError(CliError):
    """The admin function refused: its HTTP status and error envelope (openapi.yaml `Error`)."""

    def __init__(self, status: int, code: str, text: str, error: dict[str, Any] | None = None) -> None:
        self.status, self.code, self.text, self.error = status, code, text, error or {}
        super().__init__(self.describe())

    def describe(self) -> str:
        lines = [f"{self.status} {self.code}: {self.text}".replace("  ", " ")]
        for problem in self.error.get("fields") or []:
            if isinstance(problem, dict):
                lines.append(f"  {problem.get('field')}: {problem.get('problem')}")
        denied = [str(name) for name in self.error.get("denied_fields") or []]
        if denied and not all(name in self.text for name in denied):
            lines.append(f"  only the owner changes: {', '.join(denied)}")
        for name in ("seats", "sessions"):
            if isinstance(self.error.get(name), dict):
                lines.append(f"  {name}: {self.error[name].get('used')} of {self.error[name].get('max')} in use")
        return "\n".join(lines)


class AdminClient:
    """Calls to one admin function with one token; refusals become AdminError (exit 1)."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 30, inert=lambda value: value) -> None:
        self.url = url
        self._http = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s)
        self._inert = inert  # what the server says is shown with control characters made visible

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, *, body: dict[str, Any] | None = None,
             query: dict[str, str] | None = None) -> dict[str, Any]:
        return self._answer(self._send(method, path, body, query))

    def call_text(self, path: str, *, query: dict[str, str] | None = None, media_type: str = "text/csv") -> str:
        """A GET answered with a text body (e.g. ?format=csv), as the server sent it; refusals as `call`."""
        response = self._send("GET", path, None, query)
        if response.status_code < 400 and response.headers.get("content-type", "").startswith(media_type):
            return response.text
        self._answer(response)  # a refusal (or no answer at all) raises here, as in `call`
        raise CliError(f"{response.status_code}: the admin function answered without {media_type}: "
                       f"{self._snippet(response)}")

    def _send(self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, str] | None
              ) -> httpx.Response:
        url = f"{self.url}/{path}"
        for attempt in range(_RATE_LIMIT_RETRIES + 1):
            try:
                response = self._http.request(method, url, json=body, params=query)
            except httpx.HTTPError as exc:
                raise CliError(f"cannot reach {self.url}: {exc}", exit_code=3) from None
            if response.status_code != 429 or attempt == _RATE_LIMIT_RETRIES:
                break
            # Rate limited before anything was done: waiting as told and asking again is safe.
            time.sleep(min(_retry_after_s(response), _LONGEST_WAIT_S))
        return response

    def _answer(self, response: httpx.Response) -> dict[str, Any]:
        answer: Any = None
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                answer = response.json()
            except ValueError:
                answer = None
        if response.status_code >= 400:
            error = answer.get("error") if isinstance(answer, dict) else None
            if isinstance(error, dict) and "code" in error:
                error = self._inert(error)
                raise AdminError(response.status_code, str(error["code"]), str(error.get("message", "")), error)
            raise AdminError(response.status_code, response.reason_phrase or "error",
                             f"not an answer of the admin function: {self._snippet(response)}"
                             f"{self._hint(response.status_code)}")
        if not isinstance(answer, dict):
            raise CliError(f"{response.status_code}: not an answer of the admin function: {self._snippet(response)}"
                           f"{self._hint(404)}")
        return answer

    def _snippet(self, response: httpx.Response) -> str:
        text = re.sub(r"<[^>]*>", " ", response.text)  # an HTML error page: its words only
        text = " ".join(text.split())
        return self._inert(text[:200] + ("..." if len(text) > 200 else "")) or "(empty)"

    def _hint(self, status: int) -> str:
        if status == 404:
            return f"\n  is {self.url} the admin function? (--base-url: see `licensectl --help`)"
        if status in (401, 403):
            return "\n  refused before the admin function: is the function deployed for public (Firebase) access?"
        return ""


def _retry_after_s(response: httpx.Response) -> float:
    try:
        return max(0.5, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0
