"""The Firebase Auth emulator (firebase-tools from npm, pinned) as a child process on free ports.

Real sign-ins for the local stack: accounts with passwords and custom claims, ID tokens
as Firebase issues them (unsigned, as the emulator issues every token; they expire after
an hour), and the admin REST API that firebase-admin's account checks call. ./scripts/dev
seeds its users here; the tests' `auth_emulator` fixture runs one too.

    emulator = AuthEmulator("demo-coditect").start()
    emulator.put_user("dev-admin", email="admin@example.com", password="...", claims={"role": "admin"})
    emulator.sign_in_with_password("admin@example.com", "...")["idToken"]
    emulator.stop()
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx

from devstack.processes import free_port, spawn, stop_session, wait_until

# The one pin of firebase-tools: `./scripts/bootstrap --stack` reads it from this
# line and installs that version into .tools/firebase-tools-<version>/.
FIREBASE_TOOLS_VERSION = "15.34.2"
REPO = Path(__file__).resolve().parents[2]
# The emulator accepts any API key; the client SDK's own default for it is this one.
EMULATOR_API_KEY = "emulator-api-key"
_READY_TIMEOUT_S = 90  # ~6 s warm, ~12 s on a cold machine
_BIND_ATTEMPTS = 3  # free_port() is only free when asked: another process may take it meanwhile
# A SIGTERM makes firebase-tools export (with a data dir) and exit; a second one skips the
# export, and stop_session sends that at half its timeout. An export of a few accounts takes
# milliseconds: half of this is plenty.
_STOP_TIMEOUT_S = 20


class FirebaseToolsMissing(RuntimeError):
    """firebase-tools is not installed in .tools/ (./scripts/bootstrap --stack installs it)."""


class AuthEmulatorError(RuntimeError):
    """The Auth emulator refused a request; the message carries its error code (e.g. INVALID_PASSWORD)."""


def firebase_cli() -> Path:
    """The pinned firebase CLI in .tools/.

    Raises:
        FirebaseToolsMissing: it is not installed; the message says how to install it.
    """
    cli = REPO / ".tools" / f"firebase-tools-{FIREBASE_TOOLS_VERSION}" / "node_modules" / ".bin" / "firebase"
    if not os.access(cli, os.X_OK):
        raise FirebaseToolsMissing(f"{cli} is missing: ./scripts/bootstrap --stack installs "
                                   f"firebase-tools@{FIREBASE_TOOLS_VERSION} (./scripts/dev and ./scripts/test run it)")
    return cli


class AuthEmulator:
    """The Auth emulator of one project on 127.0.0.1:<free port>.

    firebase-tools runs as one node process in a session of its own (see
    devstack.processes.spawn): a terminal's Ctrl-C does not reach it, so it exports and
    exits once, when `stop()` or the kernel's parent-death signal says so.

    Args:
        project_id: a demo-* project keeps firebase-tools offline.
        data_dir: keep the accounts there across restarts: imported at start, exported
            by firebase-tools itself when it is stopped (also when this process dies
            without stopping it: the parent-death SIGTERM exports as well).
    """

    def __init__(self, project_id: str, *, data_dir: Path | None = None) -> None:
        self.project_id = project_id
        self.data_dir = data_dir.resolve() if data_dir else None  # firebase-tools runs elsewhere (cwd)
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self._attempt = 0
        self._folder: tempfile.TemporaryDirectory | None = None

    @property
    def host(self) -> str:
        """host:port, as FIREBASE_AUTH_EMULATOR_HOST and the client's --auth-emulator take it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def describe(self) -> str:
        kept = f", accounts kept in {self.data_dir}" if self.data_dir else ""
        return f"the Firebase Auth emulator (firebase-tools {FIREBASE_TOOLS_VERSION}) at {self.host}{kept}"

    def component(self) -> dict[str, object]:
        """Its entry in ./scripts/dev's stack.json "components"."""
        return {"kind": "firebase-auth-emulator", "version": FIREBASE_TOOLS_VERSION, "host": self.host,
                "data_dir": str(self.data_dir) if self.data_dir else None, "describe": self.describe()}

    # -- process ---------------------------------------------------------------------

    def start(self) -> AuthEmulator:
        """launch() and wait_until_ready(): see there."""
        self.launch()
        self.wait_until_ready()
        return self

    def launch(self) -> None:
        """Start the process and return at once (it takes seconds to be ready: start
        something else meanwhile, then wait_until_ready()).

        Call it from a thread that outlives the emulator (e.g. the main thread): the
        kernel's parent-death signal follows the thread that started the child.

        Raises:
            FirebaseToolsMissing: firebase-tools is not installed.
        """
        cli = firebase_cli()
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="auth-emulator-")
        folder = Path(self._folder.name)
        self.port = free_port()
        (folder / "firebase.json").write_text(json.dumps({"emulators": {
            "auth": {"host": "127.0.0.1", "port": self.port},
            "hub": {"host": "127.0.0.1", "port": free_port()},
            "logging": {"host": "127.0.0.1", "port": free_port()},
            "ui": {"enabled": False},
        }}))
        argv = [str(cli), "emulators:start", "--only", "auth", "--project", self.project_id,
                "--config", str(folder / "firebase.json")]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # Nothing exported yet (the first run): firebase-tools refuses to import the folder.
            exported = (self.data_dir / "firebase-export-metadata.json").is_file()
            imported = ["--import", str(self.data_dir)] if exported else []
            argv += [*imported, "--export-on-exit", str(self.data_dir)]
        env = {**os.environ, "NO_UPDATE_NOTIFIER": "1", "FIREBASE_CLI_DISABLE_UPDATE_CHECK": "true",
               "HOME": str(folder)}  # its own config store, nothing of the user's
        self._attempt += 1
        with open(folder / "emulator.log", "wb") as log:
            self.process = spawn(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(folder),
                                 own_session=True)

    def wait_until_ready(self) -> None:
        """Block until the emulator answers; relaunch on a port someone took meanwhile.

        Raises:
            RuntimeError: it exited or did not answer in time; the message ends with its output.
        """
        assert self.process is not None and self._folder is not None, "launch() first"
        while True:
            try:
                wait_until(self._answers, timeout_s=_READY_TIMEOUT_S, what="the Firebase Auth emulator",
                           process=self.process)
                return
            except BaseException as exc:
                log_text = (Path(self._folder.name) / "emulator.log").read_text(errors="replace")
                self.stop()
                if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: nothing to add
                    raise
                if "port taken" in log_text and self._attempt < _BIND_ATTEMPTS:
                    self.launch()
                    continue
                tail = "\n".join(log_text.splitlines()[-15:])
                raise RuntimeError(f"{exc}; its output ended with:\n{tail}") from exc

    def _answers(self) -> bool:
        # Its own answer, not any server's: the port was free when picked, and another
        # process of a busy test run may have taken it since (then this one exits "port taken").
        answer = httpx.get(f"{self.url}/", timeout=1)
        try:
            return answer.status_code == 200 and "authEmulator" in answer.json()
        except ValueError:
            return False

    def _log_tail(self, lines: int = 15) -> str:
        if self._folder is None:
            return "(no log: it is not running)"
        path = Path(self._folder.name) / "emulator.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def stop(self) -> None:
        """Stop it (with a data dir: after firebase-tools has exported the accounts there)."""
        stop_session(self.process, timeout_s=_STOP_TIMEOUT_S)
        self.process = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    # -- accounts --------------------------------------------------------------------

    def _call(self, path: str, body: dict[str, Any], *, admin: bool = False) -> dict[str, Any]:
        """POST to the emulator's Identity Toolkit API. `admin`: as firebase-admin would
        (the emulator takes `Bearer owner` for a service account's credentials)."""
        try:
            if admin:
                url = f"{self.url}/identitytoolkit.googleapis.com/v1/projects/{self.project_id}/{path}"
                answer = httpx.post(url, json=body, headers={"Authorization": "Bearer owner"}, timeout=10)
            else:
                url = f"{self.url}/identitytoolkit.googleapis.com/v1/{path}"
                answer = httpx.post(url, json=body, params={"key": EMULATOR_API_KEY}, timeout=10)
        except httpx.TransportError as exc:
            alive = self.process is not None and self.process.poll() is None
            raise AuthEmulatorError(f"{path}: the emulator at {self.host} did not answer ({exc}; its process "
                                    f"{'runs' if alive else 'has exited'}); its output ended with:\n"
                                    f"{self._log_tail()}") from exc
        if answer.is_success:
            return answer.json()
        try:
            code = answer.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            code = answer.text[:200]
        raise AuthEmulatorError(f"{path}: {answer.status_code} {code}")

    def sign_up(self, email: str, password: str) -> dict[str, Any]:
        """A new password account, signed in: the emulator's answer (localId, idToken, refreshToken)."""
        return self._call("accounts:signUp", {"email": email, "password": password, "returnSecureToken": True})

    def sign_in_with_password(self, email: str, password: str) -> dict[str, Any]:
        """Sign in as a user would: the emulator's answer (localId, idToken, refreshToken, expiresIn).

        Raises:
            AuthEmulatorError: e.g. INVALID_PASSWORD, EMAIL_NOT_FOUND.
        """
        return self._call("accounts:signInWithPassword",
                          {"email": email, "password": password, "returnSecureToken": True})

    def set_custom_claims(self, uid: str, claims: dict[str, Any]) -> None:
        """Replace the account's custom claims; ID tokens issued from now on carry them."""
        self._call("accounts:update", {"localId": uid, "customAttributes": json.dumps(claims)}, admin=True)

    def put_user(self, uid: str, *, email: str, password: str, claims: dict[str, Any] | None = None) -> None:
        """Create the account `uid`, or set an existing one back to these values (so seeding a
        kept emulator again changes nothing). The e-mail counts as verified, as for a user
        who clicked the link Firebase sent."""
        try:
            self._call("accounts", {"localId": uid, "email": email, "password": password}, admin=True)
        except AuthEmulatorError as exc:
            if "DUPLICATE_LOCAL_ID" not in str(exc):
                raise
        self._call("accounts:update", {"localId": uid, "email": email, "password": password, "emailVerified": True,
                                       "customAttributes": json.dumps(claims or {})}, admin=True)
