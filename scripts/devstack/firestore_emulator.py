"""The Firestore emulator (Node, in memory) as a child process on a free port."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from devstack.processes import spawn, stop

REPO = Path(__file__).resolve().parents[2]


class FirestoreEmulator:
    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FirestoreEmulator:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is required for the Firestore emulator (apt-get install nodejs)")
        self.process = spawn(
            [node, str(Path(__file__).with_name("firestore_emulator.js")), "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(REPO),
        )
        assert self.process.stdout is not None  # stdout=PIPE above
        line = self.process.stdout.readline()
        if not line:
            stop(self.process)
            raise RuntimeError(f"the Firestore emulator exited with code {self.process.poll()} before it was ready")
        self.port = json.loads(line)["port"]
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.stdin:
            self.process.stdin.close()
        stop(self.process)
