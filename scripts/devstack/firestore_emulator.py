"""Google's Cloud Firestore emulator (gcloud, Java) as a child process tree on a free port.

The one emulator of ./scripts/dev and ./scripts/test: the Cloud SDK's component
`cloud-firestore-emulator` (Debian package google-cloud-cli-firestore-emulator), which
has Firestore's transactions, cursors, collection-group queries and ranges over document
ids. There is deliberately no fallback to another emulator: the store relies on those
(its transactions above all), so a machine without Google's emulator fails loudly.

    python -m devstack.firestore_emulator    # which emulator would run; exit 1 if none
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import httpx

from devstack.processes import free_port, spawn, stop_session, wait_until

GOOGLE_EMULATOR = "google-cloud-firestore-emulator"  # EmulatorFacts.kind of Google's emulator
_COMPONENT = "cloud-firestore-emulator"  # its id among the Cloud SDK's components
_INSTALL_HINT = (
    "Google's Cloud Firestore emulator is required (Cloud SDK component cloud-firestore-emulator, "
    "Debian package google-cloud-cli-firestore-emulator; Java 17+ runs it, 21+ after Cloud SDK 528). Install it "
    "from Google's Cloud SDK apt repository (apt-get install google-cloud-cli-firestore-emulator "
    "openjdk-17-jre-headless), or set FIRESTORE_EMULATOR_HOST to one you run. There is no fallback emulator."
)
_READY_TIMEOUT_S = 90  # ~2 s warm, ~15 s on a cold machine; CI machines can be slower still
_BIND_ATTEMPTS = 3  # free_port() is only free when asked: another process may take it meanwhile
_CURRENT = "CURRENT"  # in a data_dir: the name of the export to import (see FirestoreEmulator.save)


class EmulatorMissing(RuntimeError):
    """Google's Firestore emulator, gcloud or Java is not installed on this machine."""


@dataclass(frozen=True)
class EmulatorFacts:
    """Which Firestore emulator serves a stack (recorded for tools and asserted by a test)."""

    kind: str  # GOOGLE_EMULATOR, or "unknown" for an external one that does not answer as Google's
    version: str  # the emulator component's version, e.g. "1.19.9"; "unknown" if not ours to read
    sdk_version: str  # the Cloud SDK's, e.g. "528.0.0"
    started_by_stack: bool  # False: FIRESTORE_EMULATOR_HOST named one someone else runs

    def describe(self) -> str:
        if self.kind != GOOGLE_EMULATOR:
            return f"an unknown Firestore emulator ({self.kind})"
        origin = "" if self.started_by_stack else ", external (FIRESTORE_EMULATOR_HOST)"
        return f"Google's Cloud Firestore emulator {self.version} (Cloud SDK {self.sdk_version}{origin})"

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


def _component_version(sdk_root: Path) -> str:
    try:
        snapshot = json.loads((sdk_root / ".install" / f"{_COMPONENT}.snapshot.json").read_text())
        return next(c["version"]["version_string"] for c in snapshot["components"] if c["id"] == _COMPONENT)
    except (OSError, ValueError, KeyError, StopIteration):
        return "unknown"


def installed_emulator() -> tuple[str, EmulatorFacts]:
    """(gcloud's path, the facts) of Google's emulator on this machine.

    Raises:
        EmulatorMissing: gcloud, the emulator component or Java is missing; the message
            says what to install.
    """
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise EmulatorMissing(f"gcloud is not on PATH. {_INSTALL_HINT}")
    sdk_root = _sdk_root(gcloud)
    jar = sdk_root / "platform" / _COMPONENT / f"{_COMPONENT}.jar"
    if not jar.is_file():
        raise EmulatorMissing(f"{jar} is missing. {_INSTALL_HINT}")
    if shutil.which(os.environ.get("JAVA") or "java") is None:
        raise EmulatorMissing(f"java is not on PATH (the emulator is a Java program). {_INSTALL_HINT}")
    try:
        sdk_version = (sdk_root / "VERSION").read_text().strip()
    except OSError:
        sdk_version = "unknown"
    return gcloud, EmulatorFacts(GOOGLE_EMULATOR, _component_version(sdk_root), sdk_version, started_by_stack=True)


def _answers_ok(host: str) -> bool:
    """Google's emulator answers a plain HTTP/1.1 GET / with "Ok" (it also speaks gRPC there)."""
    try:
        answer = httpx.get(f"http://{host}/", timeout=1)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and answer.text.strip() == "Ok"


def external_emulator(host: str) -> EmulatorFacts:
    """The facts of an emulator someone else runs at `host` (FIRESTORE_EMULATOR_HOST)."""
    kind = GOOGLE_EMULATOR if _answers_ok(host) else "unknown"
    return EmulatorFacts(kind, "unknown", "unknown", started_by_stack=False)


class FirestoreEmulator:
    """Google's emulator on 127.0.0.1:<free port>, started and stopped as one process tree.

    gcloud starts a shell script that starts java. The three run in a session of their
    own, which `stop()` ends as a whole, and which the kernel's parent-death signal ends
    too if this process dies without stopping it (see devstack.processes.spawn).

    Args:
        data_dir: keep the documents there across restarts: the latest export is
            imported at start, and `stop()` exports before it stops the emulator. Only
            a stop saves: an emulator ended by the parent-death signal (its parent was
            killed) keeps nothing of that run.
        project_id: the project named in the export request. The emulator exports the
            documents of every project, but nothing at all if the one named has none:
            so name the one the stack uses.
    """

    def __init__(self, *, data_dir: Path | None = None, project_id: str = "demo-coditect") -> None:
        self.data_dir = data_dir.resolve() if data_dir else None  # the emulator runs in it: no relative path
        self.project_id = project_id
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.facts: EmulatorFacts | None = None
        self._log_dir: tempfile.TemporaryDirectory | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FirestoreEmulator:
        """Raises EmulatorMissing if it is not installed, RuntimeError if it does not start."""
        gcloud, self.facts = installed_emulator()
        self._log_dir = tempfile.TemporaryDirectory(prefix="firestore-emulator-")
        log_path = Path(self._log_dir.name) / "emulator.log"
        env = {**os.environ,
               # Offline and unattended: no prompt, no update check against Google's servers.
               "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
               "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1"}
        imported = self._import_arguments()
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            port = free_port()
            with open(log_path, "wb") as log:
                process = spawn([gcloud, "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}", *imported],
                                env=env, stdout=log, stderr=subprocess.STDOUT, own_session=True,
                                cwd=str(self.data_dir) if self.data_dir else None)
            try:
                wait_until(partial(_answers_ok, f"127.0.0.1:{port}"), timeout_s=_READY_TIMEOUT_S,
                           what="Google's Firestore emulator", process=process)
            except BaseException as exc:
                stop_session(process)
                if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: nothing to add
                    self._log_dir.cleanup()
                    raise
                log_text = log_path.read_text(errors="replace")
                if "already in use" in log_text.lower() and attempt < _BIND_ATTEMPTS:
                    continue  # someone took the port between free_port() and the bind
                self._log_dir.cleanup()
                # Java's stack frames ("at ...") would push the one line that says why out of a short tail
                said = [line for line in log_text.splitlines() if not line.split("]")[-1].strip().startswith("at ")]
                tail = "\n".join(said[-15:])
                raise RuntimeError(f"{exc}; its output ended with:\n{tail}") from exc
            self.process, self.port = process, port
            return self
        raise AssertionError("unreachable: the last attempt returns or raises")

    # -- keeping the data (data_dir) ---------------------------------------------------
    # data_dir/export-<ns>/ holds one export (the emulator's own format), data_dir/CURRENT
    # names the complete one to import. An export is written beside the last one and
    # CURRENT replaced only once it is complete, so a stop that fails half-way leaves the
    # previous data in place, never a broken import. The export is asked for over HTTP:
    # `gcloud emulators firestore start --export-on-exit` exports nothing when java gets
    # SIGTERM or SIGINT (checked with Cloud SDK 528, emulator 1.19.9).

    def _import_arguments(self) -> list[str]:
        if self.data_dir is None:
            return []
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            name = (self.data_dir / _CURRENT).read_text().strip()
        except FileNotFoundError:
            return []  # nothing kept yet
        metadata = Path(name) / f"{name}.overall_export_metadata"
        if not (self.data_dir / metadata).is_file():
            raise RuntimeError(f"{self.data_dir / _CURRENT} names {name}, which holds no complete export; "
                               f"move {self.data_dir} away to start empty")
        # Relative to the emulator's working directory (data_dir): gcloud's launcher script
        # passes arguments on unquoted ($*), so a path with a space in it would be split.
        return [f"--import-data={metadata}"]

    def save(self) -> Path:
        """Export every document into data_dir now; returns the export's folder.

        Raises:
            RuntimeError: there is no data_dir, or the emulator refused or failed the export.
        """
        if self.data_dir is None or self.process is None:
            raise RuntimeError("save() needs a running emulator with a data_dir")
        name = f"export-{time.time_ns()}"
        try:
            answer = httpx.post(f"http://{self.host}/emulator/v1/projects/{self.project_id}:export", timeout=120,
                                json={"database": f"projects/{self.project_id}/databases/(default)",
                                      "export_directory": str(self.data_dir), "export_name": name})
        except httpx.HTTPError as exc:
            raise RuntimeError(f"the Firestore emulator's export failed: {exc}") from exc
        if not answer.is_success:
            raise RuntimeError(f"the Firestore emulator refused the export: {answer.status_code} {answer.text[:300]}")
        pointer = self.data_dir / f"{_CURRENT}.new"
        pointer.write_text(name + "\n")
        os.replace(pointer, self.data_dir / _CURRENT)  # atomic: CURRENT names the old export or the new one
        for older in self.data_dir.glob("export-*"):
            if older.name != name:
                shutil.rmtree(older, ignore_errors=True)
        return self.data_dir / name

    def stop(self) -> None:
        """Stop it (with a data_dir: after exporting every document there)."""
        if self.data_dir is not None and self.process is not None and self.process.poll() is None:
            try:
                self.save()
            except (RuntimeError, OSError) as exc:  # stopping must go on: the previous export stays in place
                print(f"Firestore emulator: the data of this run was not kept: {exc}", file=sys.stderr)
        stop_session(self.process)
        self.process = None
        if self._log_dir is not None:
            self._log_dir.cleanup()
            self._log_dir = None


def main() -> int:
    """Print which emulator ./scripts/dev and ./scripts/test would start; 1 if there is none."""
    try:
        _gcloud, facts = installed_emulator()
    except EmulatorMissing as exc:
        print(f"Firestore emulator: {exc}", file=sys.stderr)
        return 1
    print(facts.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
