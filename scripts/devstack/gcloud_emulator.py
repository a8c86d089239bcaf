"""What Google's Cloud SDK emulators (gcloud, Java) have in common, for the stack to run them.

Each runs as a child process tree (gcloud -> a launcher script -> java) on a free port of
127.0.0.1, is ready once a plain HTTP/1.1 GET / answers "Ok", and is stopped as a whole.
devstack.firestore_emulator and devstack.pubsub_emulator say which emulator, how it is
installed, and what it keeps; the process, readiness and bind-retry handling is here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

import httpx

from devstack.processes import free_port, spawn, stop_session, wait_until

_READY_TIMEOUT_S = 90  # ~2 s warm, ~15 s on a cold machine; CI machines can be slower still
_BIND_ATTEMPTS = 3  # free_port() is only free when asked: another process may take it meanwhile
# Offline and unattended: no prompt, no update check against Google's servers.
_GCLOUD_ENV = {"CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1"}


class EmulatorMissing(RuntimeError):
    """One of Google's emulators, gcloud or Java is not installed on this machine."""


@dataclass(frozen=True)
class EmulatorFacts:
    """Which emulator serves a stack (recorded for tools and asserted by tests).

    Each emulator's module subclasses it to name the emulator (the class variables).
    """

    GOOGLE_KIND: ClassVar[str]  # `kind` of Google's emulator, e.g. "google-cloud-firestore-emulator"
    PRODUCT: ClassVar[str]  # e.g. "Firestore"
    TITLE: ClassVar[str]  # e.g. "Cloud Firestore"
    HOST_VARIABLE: ClassVar[str]  # the variable naming an external one, e.g. "FIRESTORE_EMULATOR_HOST"

    kind: str  # GOOGLE_KIND, or "unknown" for an external one that does not answer as Google's
    version: str  # the emulator component's version, e.g. "1.19.9"; "unknown" if not ours to read
    sdk_version: str  # the Cloud SDK's, e.g. "528.0.0"
    started_by_stack: bool  # False: HOST_VARIABLE named one someone else runs

    def describe(self) -> str:
        if self.kind != self.GOOGLE_KIND:
            return f"an unknown {self.PRODUCT} emulator ({self.kind})"
        origin = "" if self.started_by_stack else f", external ({self.HOST_VARIABLE})"
        return f"Google's {self.TITLE} emulator {self.version} (Cloud SDK {self.sdk_version}{origin})"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _sdk_root(gcloud: str) -> Path:
    """The Cloud SDK folder behind a gcloud on PATH (Debian: /usr/lib/google-cloud-sdk)."""
    beside = Path(os.path.realpath(gcloud)).parents[1]
    if (beside / "platform").is_dir():
        return beside
    asked = subprocess.run([gcloud, "info", "--format=value(installation.sdk_root)"], capture_output=True,
                           text=True, timeout=60, check=False)
    return Path(asked.stdout.strip() or beside)


def _component_version(sdk_root: Path, component: str) -> str:
    try:
        snapshot = json.loads((sdk_root / ".install" / f"{component}.snapshot.json").read_text())
        return next(c["version"]["version_string"] for c in snapshot["components"] if c["id"] == component)
    except (OSError, ValueError, KeyError, StopIteration):
        return "unknown"


def installed_component(component: str, jar: str, install_hint: str) -> tuple[str, str, str]:
    """(gcloud's path, the component's version, the Cloud SDK's version) of an installed emulator.

    Args:
        component: its id among the Cloud SDK's components, also its folder in <sdk>/platform.
        jar: the path of its jar in that folder (a glob pattern if its name holds a version).
        install_hint: what to install, appended to every EmulatorMissing message.

    Raises:
        EmulatorMissing: gcloud, the component or Java is missing.
    """
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise EmulatorMissing(f"gcloud is not on PATH. {install_hint}")
    sdk_root = _sdk_root(gcloud)
    folder = sdk_root / "platform" / component
    if not any(path.is_file() for path in folder.glob(jar)):
        raise EmulatorMissing(f"{folder / jar} is missing. {install_hint}")
    if shutil.which(os.environ.get("JAVA") or "java") is None:
        raise EmulatorMissing(f"java is not on PATH (the emulator is a Java program). {install_hint}")
    try:
        sdk_version = (sdk_root / "VERSION").read_text().strip()
    except OSError:
        sdk_version = "unknown"
    return gcloud, _component_version(sdk_root, component), sdk_version


def answers_ok(host: str) -> bool:
    """Google's emulators answer a plain HTTP/1.1 GET / with "Ok" (they also speak gRPC there)."""
    try:
        answer = httpx.get(f"http://{host}/", timeout=1)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and answer.text.strip() == "Ok"


def _bind_failed(log_text: str) -> bool:
    return "already in use" in log_text.lower()


class GcloudEmulator:
    """One of Google's emulators on 127.0.0.1:<free port>, started and stopped as one process tree.

    gcloud starts a shell script that starts java. The three run in a session of their
    own, which `stop()` ends as a whole, and which the kernel's parent-death signal ends
    too if this process dies without stopping it (see devstack.processes.spawn).
    Subclasses find the emulator and call `_launch` from their `start()`.
    """

    WHAT: ClassVar[str]  # in messages, e.g. "Google's Firestore emulator"
    LOG_PREFIX: ClassVar[str]  # of the temporary folder holding its output, e.g. "firestore-emulator-"

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self._log_dir: tempfile.TemporaryDirectory | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _launch(self, gcloud: str, command: Sequence[str], arguments: Sequence[str] = (), *,
                cwd: str | None = None) -> None:
        """Run `gcloud <command> --host-port=127.0.0.1:<port> <arguments>` until it answers "Ok".

        A port taken between free_port() and the emulator's bind is retried on another.
        The pubsub emulator does not exit when its bind fails (the error ends a thread,
        not java), so its output is watched for the failure as well as its exit.

        Raises:
            RuntimeError: it exited or was not ready in time; with the end of its output.
        """
        self._log_dir = tempfile.TemporaryDirectory(prefix=self.LOG_PREFIX)
        log_path = Path(self._log_dir.name) / "emulator.log"
        env = {**os.environ, **_GCLOUD_ENV}

        def bind_failed() -> bool:
            return _bind_failed(log_path.read_text(errors="replace"))

        def settled(host: str) -> bool:
            # its own output first: a server someone else started on the port would answer "Ok" too
            return bind_failed() or answers_ok(host)

        for attempt in range(1, _BIND_ATTEMPTS + 1):
            port = free_port()
            host = f"127.0.0.1:{port}"
            with open(log_path, "wb") as log:
                process = spawn([gcloud, *command, f"--host-port={host}", *arguments],
                                env=env, stdout=log, stderr=subprocess.STDOUT, own_session=True, cwd=cwd)
            failure: Exception
            try:
                wait_until(partial(settled, host), timeout_s=_READY_TIMEOUT_S, what=self.WHAT, process=process)
            except BaseException as exc:
                stop_session(process)
                if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: nothing to add
                    self._log_dir.cleanup()
                    raise
                failure = exc
            else:
                if not bind_failed():
                    self.process, self.port = process, port
                    return
                stop_session(process)
                failure = RuntimeError(f"{self.WHAT} could not bind {host}")
            log_text = log_path.read_text(errors="replace")
            if _bind_failed(log_text) and attempt < _BIND_ATTEMPTS:
                continue  # someone took the port between free_port() and the bind
            self._log_dir.cleanup()
            # Java's stack frames ("at ...") would push the one line that says why out of a short tail
            said = [line for line in log_text.splitlines() if not line.split("]")[-1].strip().startswith("at ")]
            tail = "\n".join(said[-15:])
            raise RuntimeError(f"{failure}; its output ended with:\n{tail}") from failure
        raise AssertionError("unreachable: the last attempt returns or raises")

    def stop(self) -> None:
        """Stop the whole process tree (nothing if it is not running)."""
        stop_session(self.process)
        self.process = None
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None
