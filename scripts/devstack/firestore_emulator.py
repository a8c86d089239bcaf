"""Google's Cloud Firestore emulator (gcloud, Java) as a child process tree on a free port.

The one emulator of ./scripts/dev and ./scripts/test: the Cloud SDK's component
`cloud-firestore-emulator` (Debian package google-cloud-cli-firestore-emulator), which
has Firestore's transactions, cursors, collection-group queries and ranges over document
ids. There is deliberately no fallback to another emulator: the store relies on those
(its transactions above all), so a machine without Google's emulator fails loudly.

    python -m devstack.firestore_emulator    # which emulator would run; exit 1 if none
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import httpx

from devstack.gcloud_emulator import EmulatorFacts as _EmulatorFacts
from devstack.gcloud_emulator import EmulatorMissing, GcloudEmulator, answers_ok, installed_component

GOOGLE_EMULATOR = "google-cloud-firestore-emulator"  # EmulatorFacts.kind of Google's emulator
_COMPONENT = "cloud-firestore-emulator"  # its id among the Cloud SDK's components
_INSTALL_HINT = (
    "Google's Cloud Firestore emulator is required (Cloud SDK component cloud-firestore-emulator, "
    "Debian package google-cloud-cli-firestore-emulator; Java 17+ runs it, 21+ after Cloud SDK 528). Install it "
    "from Google's Cloud SDK apt repository (apt-get install google-cloud-cli-firestore-emulator "
    "openjdk-17-jre-headless), or set FIRESTORE_EMULATOR_HOST to one you run. There is no fallback emulator."
)
_CURRENT = "CURRENT"  # in a data_dir: the name of the export to import (see FirestoreEmulator.save)


class EmulatorFacts(_EmulatorFacts):
    """Which Firestore emulator serves a stack (recorded for tools and asserted by a test)."""

    GOOGLE_KIND = GOOGLE_EMULATOR
    PRODUCT = "Firestore"
    TITLE = "Cloud Firestore"
    HOST_VARIABLE = "FIRESTORE_EMULATOR_HOST"


def installed_emulator() -> tuple[str, EmulatorFacts]:
    """(gcloud's path, the facts) of Google's emulator on this machine.

    Raises:
        EmulatorMissing: gcloud, the emulator component or Java is missing; the message
            says what to install.
    """
    gcloud, version, sdk_version = installed_component(_COMPONENT, f"{_COMPONENT}.jar", _INSTALL_HINT)
    return gcloud, EmulatorFacts(GOOGLE_EMULATOR, version, sdk_version, started_by_stack=True)


def external_emulator(host: str) -> EmulatorFacts:
    """The facts of an emulator someone else runs at `host` (FIRESTORE_EMULATOR_HOST)."""
    kind = GOOGLE_EMULATOR if answers_ok(host) else "unknown"
    return EmulatorFacts(kind, "unknown", "unknown", started_by_stack=False)


class FirestoreEmulator(GcloudEmulator):
    """Google's emulator on 127.0.0.1:<free port>, started and stopped as one process tree
    (gcloud, a shell script, java: see devstack.gcloud_emulator.GcloudEmulator).

    Args:
        data_dir: keep the documents there across restarts: the latest export is
            imported at start, and `stop()` exports before it stops the emulator. Only
            a stop saves: an emulator ended by the parent-death signal (its parent was
            killed) keeps nothing of that run.
        project_id: the project named in the export request. The emulator exports the
            documents of every project, but nothing at all if the one named has none:
            so name the one the stack uses.
    """

    WHAT = "Google's Firestore emulator"
    LOG_PREFIX = "firestore-emulator-"

    def __init__(self, *, data_dir: Path | None = None, project_id: str = "demo-coditect") -> None:
        super().__init__()
        self.data_dir = data_dir.resolve() if data_dir else None  # the emulator runs in it: no relative path
        self.project_id = project_id
        self.facts: EmulatorFacts | None = None

    def start(self) -> FirestoreEmulator:
        """Raises EmulatorMissing if it is not installed, RuntimeError if it does not start."""
        gcloud, self.facts = installed_emulator()
        self._launch(gcloud, ["emulators", "firestore", "start"], self._import_arguments(),
                     cwd=str(self.data_dir) if self.data_dir else None)
        return self

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
        super().stop()


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
