"""Each deployable bundle installs into a fresh venv and serves its function on its own.

scripts/build-bundles makes one archive per function (main.py + shared/ + only the
requirements it declares). Here each is unpacked alone, its requirements installed into
a new virtualenv (one per distinct set), and served by the functions-framework CLI with
no repository on the path. A real flow then runs through all of them, because imports
are lazy: only a real call proves a bundle lacks nothing (Redis, Firestore, KMS, auth).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from coditect_license import verify_webhook
from devstack.processes import free_port, spawn, stop, wait_until
from tests.functions.test_webhook_delivery import Receiver

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory, stack):
    root = tmp_path_factory.mktemp("bundles")
    built = subprocess.run([sys.executable, str(REPO / "scripts" / "build-bundles"), "--out", str(root / "zips")],
                           check=True, capture_output=True, text=True)
    archives = json.loads(built.stdout)
    venvs: dict[str, Path] = {}
    servers, urls = [], {}
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "GRPC_VERBOSITY": "ERROR",
           **stack.env}
    try:
        for name, archive in sorted(archives.items()):
            folder = root / name
            zipfile.ZipFile(root / "zips" / archive).extractall(folder)
            requirements = (folder / "requirements.txt").read_text()
            key = hashlib.sha256(requirements.encode()).hexdigest()[:12]
            if key not in venvs:
                venv = root / f"venv-{key}"
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
                subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                                "-r", str(folder / "requirements.txt")], check=True, capture_output=True)
                venvs[key] = venv
            port = free_port()
            process = spawn([str(venvs[key] / "bin" / "functions-framework"), "--target", name, "--source", "main.py",
                             "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=str(folder), stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "wb"))
            servers.append(process)
            urls[name] = f"http://127.0.0.1:{port}"
        for name, url in urls.items():
            wait_until(lambda url=url: httpx.get(url, timeout=1).status_code < 500, timeout_s=60,
                       what=f"the {name} bundle")
        yield {"urls": urls, "venvs": len(venvs), "root": root}
    finally:
        for process in servers:
            stop(process)


def test_every_function_has_a_bundle(served):
    functions = {p.parent.name for p in (REPO / "functions").glob("*/main.py")}
    assert set(served["urls"]) == functions


def test_bundles_carry_only_declared_requirements(served):
    def requirements(name: str) -> str:
        return (served["root"] / name / "requirements.txt").read_text()

    # What each function's import graph really needs (the real flow below proves it is enough).
    assert not {"google-cloud-kms", "PyJWT", "firebase-admin", "pydantic"} & _names(requirements("health"))
    assert not {"redis", "google-cloud-firestore", "firebase-admin", "pydantic"} & _names(requirements("jwks"))
    assert not {"google-cloud-kms", "PyJWT", "firebase-admin", "pydantic"} & _names(requirements("sweep"))
    assert not {"redis", "google-cloud-kms", "PyJWT", "firebase-admin", "pydantic"} & _names(requirements("notify"))
    assert not {"redis", "google-cloud-firestore", "google-cloud-kms", "firebase-admin", "pydantic",
                "google-cloud-pubsub", "google-cloud-secret-manager"} & _names(requirements("console"))  # files only
    # admin signs usage statements with the lease root
    assert {"google-cloud-kms", "PyJWT", "cryptography"} <= _names(requirements("admin"))


def _names(requirements: str) -> set[str]:
    return {line.split("==")[0] for line in requirements.splitlines() if "==" in line}


def test_the_bundles_serve_a_real_flow(served, id_token, make_license, stack):
    url = served["urls"]
    lic = make_license(seats=2)
    user = {"Authorization": f"Bearer {id_token('bundle-user')}"}
    admin = {"Authorization": f"Bearer {id_token('bundle-admin', role='admin', tenant=lic.tenant_id)}"}

    assert httpx.get(url["health"]).json() == {"status": "ok"}
    page = httpx.get(url["console"] + "/")  # the page as built, from the bundle's static/
    assert page.status_code == 200 and '<base href="' in page.text and "script-src 'self'" in \
        page.headers["Content-Security-Policy"]
    [script] = [part.split('"')[0] for part in page.text.split('src="')[1:] if part.startswith("assets/")]
    assert httpx.get(f"{url['console']}/{script}").status_code == 200
    assert httpx.get(url["health"] + "/ready").json()["checks"] == {"redis": "ok", "firestore": "ok"}
    assert httpx.get(url["jwks"]).json()["keys"]
    acquired = httpx.post(url["acquire"], json={"license_key": lic.key, "hardware_id": "bundle"}, headers=user)
    assert acquired.status_code == 201, acquired.text
    session = {"session_id": acquired.json()["session_id"]}
    assert httpx.post(url["heartbeat"], json=session, headers=user).json()["status"] == "ok"
    assert httpx.post(url["validate"], json={"license_key": lic.key}, headers=user).json()["code"] == "VALID"
    holders = httpx.get(f"{url['admin']}/licenses/{lic.license_id}/sessions", headers=admin)
    assert holders.status_code == 200 and len(holders.json()["sessions"]) == 1
    through = httpx.get(f"{url['admin']}/licenses/{lic.license_id}/report", headers=admin).json()["through"]
    last_closed = datetime.fromisoformat(through.replace("Z", "+00:00")) - timedelta(hours=1)
    signed = httpx.get(f"{url['admin']}/licenses/{lic.license_id}/statement", headers=admin,
                       params={"month": last_closed.strftime("%Y-%m")})
    assert signed.status_code == 200 and signed.json()["statement"].count(".") == 2, signed.text
    assert httpx.post(url["release"], json=session, headers=user).json() == {"status": "released"}
    # a webhook: the admin bundle makes its secret, the sweep's publishes the suspension, the
    # notify bundle pulls it, reads the secret and delivers it signed
    receiver = Receiver([200])
    owner = {"Authorization": f"Bearer {id_token('bundle-owner', role='owner')}"}
    try:
        made = httpx.post(f"{url['admin']}/webhooks", headers=admin,
                          json={"url": receiver.url, "events": ["license.suspended"]})
        assert made.status_code == 201, made.text
        suspended = httpx.patch(f"{url['admin']}/licenses/{lic.license_id}", headers=owner, json={"suspended": True})
        assert suspended.status_code == 200, suspended.text
        swept = httpx.post(url["sweep"], headers={"Authorization": f"Bearer {stack.scheduler_token()}"}, timeout=60)
        assert swept.status_code == 200, swept.text
        # (the stack's subscription also holds other tests' messages, some of this tenant's
        # licenses: the endpoint gets those too, each verified; ours is among them)
        secret = made.json()["secret"]

        def ours() -> list[dict]:
            events = [verify_webhook(body, headers, secret) for body, headers in receiver.received]
            return [e for e in events if (e["type"], e["license"]) == ("license.suspended", lic.license_id)]

        deadline = time.monotonic() + 60
        while not ours() and time.monotonic() < deadline:
            notified = httpx.post(url["notify"], headers={"Authorization": f"Bearer {stack.scheduler_token('notify')}"},
                                  timeout=90)
            assert notified.status_code == 200, notified.text
        assert len(ours()) == 1
        assert httpx.delete(f"{url['admin']}/webhooks/{made.json()['webhook']['id']}", headers=admin).status_code == 200
    finally:
        receiver.server.shutdown()
