"""What the console's browser tests drive: ./scripts/dev, Debian's chromium and the client SDK.

- `running_dev`: ./scripts/dev in a subprocess on a port and state dir of its own, until its
  banner is out (the approach of tests/system/test_dev_stack.py's `_dev`; its output goes to
  a file in the state dir, so nothing blocks on a full pipe while a module runs);
  stopped with SIGTERM, which must exit 0.
- `DevStack`: that stack's facts, its seeded accounts, sign-in at its Auth emulator,
  scripts/licensectl against it, plain seat calls.
- `launch_chromium`: /usr/bin/chromium (never a browser Playwright downloads).
- `SdkClient`: the client SDK holding a seat from a thread, every answer it got recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack.auth_emulator import EMULATOR_API_KEY
from devstack.processes import free_port

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / ".dev" / "screenshots"  # .dev/ is git-ignored
CHROMIUM = Path("/usr/bin/chromium")  # Debian's: scripts/bootstrap --stack installs it
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
# The test process's own stack settings (tests/conftest.py's `stack` applies them): ./scripts/dev
# starts servers of its own, as a developer's does, and the tools talk to it through its stack.json.
_STACK_ENV = ("REDIS_URL", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "NOTIFY_TOPIC",
              "FIREBASE_AUTH_EMULATOR_HOST")
_START_S = 120


@dataclass(frozen=True)
class Account:
    email: str
    password: str


@dataclass
class DevStack:
    state_dir: Path
    facts: dict[str, Any]  # its stack.json
    banner: str

    @property
    def base_url(self) -> str:
        return self.facts["base_url"]

    @property
    def console_url(self) -> str:
        """The console's page (every function at <base_url>/<name>; stack.json says it where it does)."""
        return self.facts.get("console_url") or f"{self.base_url}/console/"

    def account(self, name: str) -> Account:
        """A seeded account of scripts/devstack/dev.py's DEV_ACCOUNTS: owner, admin (tenant demo), user."""
        entry = self.facts["accounts"][name]
        return Account(entry["email"], entry["password"])

    def tools_env(self) -> dict[str, str]:
        env = {**os.environ, "DEV_STATE_DIR": str(self.state_dir)}
        for name in _STACK_ENV:
            env.pop(name, None)
        return env

    def licensectl(self, *args: str, stdin: str | None = None) -> str:
        """scripts/licensectl against this stack (its own owner account); its stdout. Fails loudly."""
        done = subprocess.run([str(REPO / "scripts" / "licensectl"), *args], input=stdin, text=True,
                              capture_output=True, timeout=120, env=self.tools_env())
        assert done.returncode == 0, f"licensectl {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def create_license(self, tenant: str, seats: int, *extra: str) -> tuple[str, str]:
        """(license id, key) of a new license, made by the vendor with licensectl."""
        made = json.loads(self.licensectl("create-license", "--tenant", tenant, "--seats", str(seats), *extra,
                                          "--json"))
        return made["license"]["id"], made["license_key"]

    def sign_in(self, account: Account) -> str:
        """An ID token of the account, from the Auth emulator (accounts:signInWithPassword)."""
        host = self.facts["firebase_auth_emulator_host"]
        answer = httpx.post(f"http://{host}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword",
                            params={"key": EMULATOR_API_KEY}, timeout=10,
                            json={"email": account.email, "password": account.password, "returnSecureToken": True})
        assert answer.status_code == 200, answer.text
        return answer.json()["idToken"]

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def acquire(self, token: str, key: str, hardware_id: str) -> str:
        """A seat taken with a plain POST /acquire; its session id."""
        with self.client(token) as client:
            answer = client.post("/acquire", json={"license_key": key, "hardware_id": hardware_id})
        assert answer.status_code == 201, answer.text
        return answer.json()["session_id"]

    def trusted_roots(self) -> list[str]:
        """The stack's root key thumbprints (the kids of GET /jwks), as a vendor pins them."""
        return [key["kid"] for key in httpx.get(f"{self.base_url}/jwks", timeout=10).json()["keys"]]

    def log_tail(self, lines: int = 40) -> str:
        texts = []
        for name in ("dev.out", "functions.log"):
            path = self.state_dir / name
            if path.is_file():
                texts.append(f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)


@contextlib.contextmanager
def running_dev(state_dir: Path) -> Iterator[DevStack]:
    """./scripts/dev until its banner is out; stopped with SIGTERM at the end, which must exit 0."""
    env = {**os.environ, "PORT": str(free_port()), "DEV_STATE_DIR": str(state_dir), "WORKERS": "2"}
    for name in _STACK_ENV:
        env.pop(name, None)
    out_path = state_dir / "dev.out"
    with open(out_path, "w") as out:
        # No scheduled sweep: nothing here waits for one, and a module is over long before a lease could lapse.
        dev = subprocess.Popen([str(REPO / "scripts" / "dev"), "--sweep-interval", "0"], env=env, stdout=out,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + _START_S
        while "Stop with Ctrl-C" not in out_path.read_text(errors="replace"):
            assert dev.poll() is None, f"./scripts/dev exited with {dev.returncode}:\n{out_path.read_text()}"
            assert time.monotonic() < deadline, f"./scripts/dev not up in {_START_S} s:\n{out_path.read_text()}"
            time.sleep(0.2)
        facts = json.loads((state_dir / "stack.json").read_text())
        yield DevStack(state_dir, facts, out_path.read_text())
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=60)
    assert dev.returncode == 0, f"./scripts/dev stopped with {dev.returncode}:\n{out_path.read_text()[-4000:]}"


def chromium_missing() -> str | None:
    """Why /usr/bin/chromium cannot run, or None."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: ./scripts/bootstrap --stack installs Debian's chromium (./scripts/test runs it)"
    return None


def wait_for(condition, *, timeout_s: float = 15.0, what: str = "the condition") -> None:
    """Poll `condition()` every 50 ms until it is true (no fixed sleep); fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.05)


class RecordingTransport(httpx.HTTPTransport):
    """The SDK's transport (LeaseOptions.transport): every answer as (path, status, error code)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[tuple[str, int, str | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        response.read()
        code = None
        if response.status_code >= 400:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                code = response.json()["error"]["code"]
        self.answers.append((request.url.path, response.status_code, code))
        return response

    def statuses(self, path: str) -> list[tuple[int, str | None]]:
        return [(status, code) for answered, status, code in self.answers if answered == path]


@dataclass
class SdkClient:
    """A tool holding a seat through the client SDK; acquired on a thread of its own, as a tool would."""

    dev: DevStack
    key: str
    token: str
    hardware_id: str
    hostname: str
    version: str
    transport: RecordingTransport = field(default_factory=RecordingTransport)
    lease: Any = None

    def acquire(self) -> Any:
        from coditect_license import LeaseOptions, License

        self.lease = License(self.key, server=self.dev.base_url, token_provider=lambda: self.token,
                             trusted_roots=self.dev.trusted_roots(), hardware_id=self.hardware_id,
                             options=LeaseOptions(client_version=self.version, hostname=self.hostname,
                                                  handle_signals=False, release_at_exit=False, use_borrow=False,
                                                  transport=self.transport))
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                self.lease.acquire()
            except BaseException as exc:  # handed to the test's thread
                outcome["error"] = exc

        thread = threading.Thread(target=run, name="sdk-client", daemon=True)
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the SDK's acquire did not return within 60 s"
        if "error" in outcome:
            raise outcome["error"]
        return self.lease
