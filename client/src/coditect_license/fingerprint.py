"""The machine's hardware id: stable, hashed, and deliberate in containers.

The first source that gives a value wins:

 1. `CODITECT_FINGERPRINT`   an explicit fingerprint (any string): a CI job or pod
                             binds the seat it means to.
 2. `CODITECT_WORKLOAD_ID`   a workload identity (e.g. "ci/acme/build#1234").
 3. Kubernetes               `POD_NAMESPACE`/`POD_NAME` (downward API) or the service
                             account's namespace file + the pod's hostname.
 4. other containers         (/.dockerenv, /run/.containerenv, container cgroups) the
                             machine id *and* the container's hostname: an image that
                             bakes one /etc/machine-id into every container would
                             otherwise make all of them one machine sharing one seat.
 5. the machine              Linux: /etc/machine-id, /var/lib/dbus/machine-id, then
                             /sys/class/dmi/id/product_uuid (if readable);
                             macOS: IOPlatformUUID (`ioreg -rd1 -c IOPlatformExpertDevice`);
                             Windows: HKLM\\SOFTWARE\\Microsoft\\Cryptography\\MachineGuid.
 6. MAC address              the primary interface (uuid.getnode), when it is a real one.
 7. hostname                 the very last resort.

Whatever the source, only `<source>-<SHA-256(salt, source, value)>` leaves the machine
(never a raw serial): 3..13 + 1 + 64 printable characters, inside the server's
hardware_id rule (1..128 printable). The salt is fixed, so the same machine always gives
the same id, across reboots, processes and users.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from coditect_license import environment

SALT = b"coditect-license/fingerprint/v1"
ENV_FINGERPRINT = environment.FINGERPRINT
ENV_WORKLOAD = environment.WORKLOAD_ID

_K8S_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
_MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
_DMI_UUID = Path("/sys/class/dmi/id/product_uuid")
_CONTAINER_MARKERS = (Path("/.dockerenv"), Path("/run/.containerenv"))
_CONTAINER_CGROUP = re.compile(r"docker|kubepods|containerd|libpod|lxc|crio", re.I)


@dataclass(frozen=True)
class Fingerprint:
    hardware_id: str  # what is sent to the server
    source: str       # which source gave it (never the raw value)

    def __str__(self) -> str:
        return self.hardware_id


def _digest(source: str, value: str) -> str:
    return hashlib.sha256(SALT + b"\0" + source.encode() + b"\0" + value.encode("utf-8", "replace")).hexdigest()


def _read(path: Path) -> str | None:
    try:
        value = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return value or None


def in_container() -> bool:
    if any(marker.exists() for marker in _CONTAINER_MARKERS):
        return True
    cgroup = _read(Path("/proc/1/cgroup")) or ""
    return bool(_CONTAINER_CGROUP.search(cgroup))


def _kubernetes(env: Mapping[str, str]) -> str | None:
    if not env.get("KUBERNETES_SERVICE_HOST"):
        return None
    namespace = env.get("POD_NAMESPACE") or _read(_K8S_NAMESPACE_FILE) or "default"
    pod = env.get("POD_NAME") or env.get("HOSTNAME") or socket.gethostname()
    return f"{namespace}/{pod}"


def _linux_machine() -> tuple[str, str] | None:
    for path in _MACHINE_ID_FILES:
        value = _read(path)
        if value and value.strip("0"):
            return "machine-id", value
    value = _read(_DMI_UUID)  # usually root-only: after machine-id so ids don't depend on the user
    if value and value.strip("0-"):
        return "dmi", value.lower()
    return None


def _macos_machine() -> tuple[str, str] | None:
    try:
        out = subprocess.run(["ioreg", "-rd1", "-c", "IOPlatformExpertDevice"], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'"IOPlatformUUID"\s*=\s*"([^"]+)"', out)
    return ("ioreg", match.group(1)) if match else None


def _windows_machine() -> tuple[str, str] | None:
    if sys.platform != "win32":  # also tells type checkers on other systems that winreg is not theirs
        return None
    try:
        import winreg

        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\Cryptography", 0,
                            winreg.KEY_READ | winreg.KEY_WOW64_64KEY) as key:
            value, _ = winreg.QueryValueEx(key, "MachineGuid")
    except (ImportError, OSError):
        return None
    return ("registry", str(value)) if value else None


def _machine() -> tuple[str, str] | None:
    if sys.platform == "darwin":
        return _macos_machine()
    if sys.platform == "win32":
        return _windows_machine()
    return _linux_machine()


def _mac_address() -> str | None:
    node = uuid.getnode()
    if node >> 40 & 1:  # multicast bit: uuid made up a random number, not a real MAC
        return None
    return f"{node:012x}"


def compute(env: Mapping[str, str] | None = None, *,
            machine: Callable[[], tuple[str, str] | None] = _machine) -> Fingerprint:
    """This machine's fingerprint (see the module doc for the order of sources)."""
    env = os.environ if env is None else env
    explicit = (env.get(ENV_FINGERPRINT) or "").strip()
    if explicit:
        return Fingerprint(f"override-{_digest('override', explicit)}", "override")
    workload = (env.get(ENV_WORKLOAD) or "").strip()
    if workload:
        return Fingerprint(f"workload-{_digest('workload', workload)}", "workload")
    pod = _kubernetes(env)
    if pod:
        return Fingerprint(f"k8s-{_digest('k8s', pod)}", "kubernetes")
    found = machine()
    if in_container():
        base = found[1] if found else ""
        return Fingerprint(f"container-{_digest('container', base + '/' + socket.gethostname())}", "container")
    if found:
        source, value = found
        return Fingerprint(f"{source}-{_digest(source, value)}", source)
    mac = _mac_address()
    if mac:
        return Fingerprint(f"mac-{_digest('mac', mac)}", "mac")
    return Fingerprint(f"host-{_digest('host', socket.gethostname())}", "hostname")


def hardware_id() -> str:
    return compute().hardware_id
