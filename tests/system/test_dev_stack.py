"""./scripts/dev as a developer runs it: banner, walk-through, clean stop."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from devstack.processes import free_port

REPO = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> set[int]:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            children |= {child} | _descendants(child)
    return children


def test_dev_stack_serves_the_walk_through_and_stops_cleanly(tmp_path, stack):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DEV_STATE_DIR": str(tmp_path), "WORKERS": "2",
           "REDIS_URL": stack.redis_url}  # an existing Redis is used instead of starting one
    env.pop("FIRESTORE_EMULATOR_HOST", None)  # ... and its own emulator is started
    dev = subprocess.Popen([str(REPO / "scripts" / "dev")], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        deadline, banner = time.monotonic() + 120, []
        while not (tmp_path / "stack.json").exists():
            assert dev.poll() is None and time.monotonic() < deadline, "".join(banner)
            time.sleep(0.2)
        facts = json.loads((tmp_path / "stack.json").read_text())
        assert facts["base_url"] == f"http://127.0.0.1:{port}" and facts["redis_url"] == stack.redis_url
        for line in dev.stdout:
            banner.append(line)
            if line.startswith("Stop with Ctrl-C"):
                break
        text = "".join(banner)
        token = re.search(r"export TOKEN='([^']+)'", text).group(1)
        assert facts["license_key"] in text
        assert facts["components"]["firestore"]["kind"] == "google-cloud-firestore-emulator"
        assert "Google's Cloud Firestore emulator" in text

        # the printed walk-through, as curl would do it
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=facts["base_url"], headers=headers, timeout=10) as client:
            assert client.get("/health/ready").json()["status"] == "ok"
            acquired = client.post("/acquire", json={"license_key": facts["license_key"], "hardware_id": "laptop-1"})
            assert acquired.status_code == 201, acquired.text
            session = {"session_id": acquired.json()["session_id"]}
            assert client.post("/heartbeat", json=session).json()["status"] == "ok"
            assert client.post("/release", json=session).json() == {"status": "released"}
        # ... and its administration part: the owner sells, the tenant's admin reads
        owner, admin = (re.search(rf"export {name}='([^']+)'", text).group(1) for name in ("OWNER", "ADMIN"))
        with httpx.Client(base_url=facts["base_url"], timeout=10) as client:
            sold = client.post("/admin/licenses", headers={"Authorization": f"Bearer {owner}"},
                               json={"tenant": "demo", "max_seats": 5, "tier": "team", "features": ["build"]})
            assert sold.status_code == 201, sold.text
            listed = client.get("/admin/licenses", headers={"Authorization": f"Bearer {admin}"}).json()["licenses"]
            assert sold.json()["license"]["id"] in [lic["id"] for lic in listed]

        # ... and the sweep's Cloud Scheduler job, as an operator steers it
        status = subprocess.run([str(REPO / "scripts" / "licensectl"), "sweep", "status", "--json"], text=True,
                                capture_output=True, timeout=120, env={**os.environ, "DEV_STATE_DIR": str(tmp_path)})
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["state"] == "ENABLED" and facts["sweep_job"].endswith("/dev-license-sweep")

        children = _descendants(dev.pid)
        assert children, "the stack runs its servers as children"
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=30)

    assert dev.returncode == 0
    time.sleep(0.5)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "orphans left behind"
    assert not (tmp_path / "stack.json").exists()


def _dev(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devstack.dev", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'scripts'}", **(env or {})})


def test_dev_has_help_and_real_options():
    answer = _dev("--help")
    assert answer.returncode == 0
    for option in ("--port", "--workers", "--threads", "--sweep-interval", "--state-dir", "DEV_STATE_DIR"):
        assert option in answer.stdout


def test_dev_refuses_a_port_already_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        answer = _dev("--port", str(port), "--state-dir", str(tmp_path))
    assert answer.returncode != 0 and f"port {port} " in answer.stderr and "already in use" in answer.stderr
    assert "Traceback" not in answer.stderr
    assert not (tmp_path / "stack.json").exists()


def test_tools_name_the_state_dir_they_looked_in(tmp_path):
    looked = subprocess.run([str(REPO / "scripts" / "licensectl"), "licenses"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "DEV_STATE_DIR": str(tmp_path)})
    assert looked.returncode != 0 and str(tmp_path) in looked.stderr
