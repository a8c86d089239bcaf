"""./scripts/dev as a developer runs it: banner, walk-through with real sign-ins, --persist, clean stop.

Each start of the dev stack costs ~10-20 s (its own Redis, Firestore and Auth emulators):
these tests start it three times in all.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class RunningDev:
    process: subprocess.Popen
    facts: dict  # its stack.json
    banner: str

    def exported(self, name: str) -> str:
        """The value of a literal `export NAME='...'` line of the banner."""
        return re.search(rf"export {name}='([^']+)'", self.banner).group(1)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.facts["base_url"], headers=headers, timeout=10)


@contextlib.contextmanager
def _dev(state_dir: Path, *args: str) -> Iterator[RunningDev]:
    """./scripts/dev until its banner is out; stopped with SIGTERM at the end, which must exit 0."""
    env = {**os.environ, "PORT": str(free_port()), "DEV_STATE_DIR": str(state_dir), "WORKERS": "2"}
    # it starts its own servers, as a developer's does
    for name in ("REDIS_URL", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "NOTIFY_TOPIC"):
        env.pop(name, None)
    dev = subprocess.Popen([str(REPO / "scripts" / "dev"), *args], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (state_dir / "stack.json").exists():
            assert dev.poll() is None and time.monotonic() < deadline, dev.stdout.read() if dev.poll() else "slow"
            time.sleep(0.2)
        banner = []
        for line in dev.stdout:
            banner.append(line)
            if line.startswith("Stop with Ctrl-C"):
                break
        yield RunningDev(dev, json.loads((state_dir / "stack.json").read_text()), "".join(banner))
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=60)
    assert dev.returncode == 0
    assert not (state_dir / "stack.json").exists()


def _claims(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_dev_stack_serves_the_walk_through_with_real_sign_ins_and_stops_cleanly(tmp_path):
    with _dev(tmp_path) as dev:
        facts, text = dev.facts, dev.banner
        assert facts["license_key"] in text
        assert facts["components"]["firestore"]["kind"] == "google-cloud-firestore-emulator"
        assert facts["components"]["pubsub"]["kind"] == "google-cloud-pubsub-emulator"
        assert facts["components"]["auth"]["host"] == facts["firebase_auth_emulator_host"]
        assert "Google's Cloud Firestore emulator" in text and "the Firebase Auth emulator" in text
        user, owner, admin = (dev.exported(name) for name in ("TOKEN", "OWNER", "ADMIN"))
        # the banner's tokens come from signing in to the Auth emulator, not from a hand-made JWT
        assert _claims(user)["firebase"]["sign_in_provider"] == "password" and _claims(user)["sub"] == "dev-user"
        assert _claims(admin)["role"] == "admin" and _claims(admin)["tenant"] == "demo"

        # the admin console, where the banner says, signing in against the same emulator
        assert f"Admin console: {facts['console_url']}" in text
        console = httpx.get(facts["console_url"], timeout=10)
        assert console.status_code == 200 and f'<base href="{facts["console_url"]}">' in console.text
        config = httpx.get(facts["console_url"] + "config.json", timeout=10).json()
        assert config["authEmulator"] == f"http://{facts['firebase_auth_emulator_host']}"

        # the printed walk-through, as curl would do it: the user holds a seat ...
        with dev.client(user) as client:
            assert client.get("/health/ready").json()["status"] == "ok"
            acquired = client.post("/acquire", json={"license_key": facts["license_key"], "hardware_id": "laptop-1"})
            assert acquired.status_code == 201, acquired.text
            session = {"session_id": acquired.json()["session_id"]}
            license_id = acquired.json()["session_id"].split(".")[0]
        # ... the vendor sells, the tenant's admin sees the seat held (accounts checked in the emulator)
        with dev.client(owner) as client:
            sold = client.post("/admin/licenses", json={"tenant": "demo", "max_seats": 5, "tier": "team"})
            assert sold.status_code == 201, sold.text
        with dev.client(admin) as client:
            listed = client.get("/admin/licenses").json()["licenses"]
            assert {sold.json()["license"]["id"], license_id} <= {lic["id"] for lic in listed}
            held = client.get(f"/admin/licenses/{license_id}/sessions")
            assert session["session_id"] in [s["session_id"] for s in held.json()["sessions"]], held.text
        with dev.client(user) as client:
            assert client.post("/heartbeat", json=session).json()["status"] == "ok"
            assert client.post("/release", json=session).json() == {"status": "released"}

        # a fresh token as the banner says to get one (the shell function it prints)
        signin = text[text.index("signin() {"):text.index("export TOKEN=$(signin")]
        fresh = subprocess.run(["bash", "-c", f"{signin}\nsignin dev@example.com dev-user-pass"], capture_output=True,
                               text=True, timeout=30)
        assert fresh.returncode == 0 and _claims(fresh.stdout.strip())["sub"] == "dev-user", fresh.stderr
        # the client's CLI signs in against the same emulator, as printed
        cli = REPO / ".venv" / "bin" / "coditect-license"
        cli_env = {**os.environ, "CODITECT_LICENSE_CONFIG_DIR": str(tmp_path / "sdk-config"),
                   "CODITECT_LICENSE_CACHE_DIR": str(tmp_path / "sdk-cache"),
                   "CODITECT_LICENSE_SERVER": facts["base_url"], "CODITECT_LICENSE_KEY": facts["license_key"]}
        login = re.search(r"coditect-license (login --auth-emulator \S+ --email \S+)\s+# (\S+)", text)
        signed_in = subprocess.run([str(cli), *login.group(1).split(), "--password-stdin"], input=login.group(2) + "\n",
                                   capture_output=True, text=True, timeout=60, env=cli_env)
        assert signed_in.returncode == 0, signed_in.stderr
        acquired_by_cli = subprocess.run([str(cli), "acquire", "--json"], capture_output=True, text=True, timeout=60,
                                         env=cli_env)
        assert json.loads(acquired_by_cli.stdout)["claims"]["uid"] == "dev-user", acquired_by_cli.stderr
        assert subprocess.run([str(cli), "release"], capture_output=True, timeout=60, env=cli_env).returncode == 0

        # ... and the operator's tools: licensectl (its own owner account) and the sweep's Scheduler job
        tools_env = {**os.environ, "DEV_STATE_DIR": str(tmp_path)}
        licenses = subprocess.run([str(REPO / "scripts" / "licensectl"), "licenses", "--json"], text=True,
                                  capture_output=True, timeout=120, env=tools_env)
        assert licenses.returncode == 0, licenses.stderr
        status = subprocess.run([str(REPO / "scripts" / "licensectl"), "sweep", "status", "--json"], text=True,
                                capture_output=True, timeout=120, env=tools_env)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["state"] == "ENABLED" and facts["sweep_job"].endswith("/dev-license-sweep")

        # the usage walk-through: a short load, its report, a signed statement verified offline
        lines = [line.strip() for line in text.splitlines()]
        load = next(line for line in lines if line.startswith("scripts/demo-load"))
        assert load == "scripts/demo-load --users 6 --seconds 20"
        loaded = subprocess.run([str(REPO / "scripts" / "demo-load"), "--users", "5", "--seconds", "4", "--hold", "1",
                                 "2"], text=True, capture_output=True, timeout=120, env=tools_env)
        assert loaded.returncode == 0 and "acquire 201" in loaded.stdout and "acquire 409" in loaded.stdout, \
            loaded.stdout + loaded.stderr
        license_id = facts["license_id"]
        assert f"scripts/licensectl report {license_id} --granularity hour --from $(date -u +%F)" in lines
        report = subprocess.run([str(REPO / "scripts" / "licensectl"), "report", license_id, "--granularity", "hour",
                                 "--from", time.strftime("%Y-%m-%d", time.gmtime()), "--json"], text=True,
                                capture_output=True, timeout=120, env=tools_env)
        assert report.returncode == 0, report.stderr
        now = json.loads(report.stdout)["series"][-1]
        assert now["final"] is False and now["peak"] == 3 and now["denials_no_seat"] >= 1 and now["grants"] >= 3
        table = subprocess.run([str(REPO / "scripts" / "licensectl"), "report", license_id], text=True,
                               capture_output=True, timeout=120, env=tools_env)
        assert table.returncode == 0 and "seats would have covered 99% of the demand" in table.stdout, table.stdout
        assert subprocess.run([str(REPO / "scripts" / "licensectl"), "sweep", "run"], capture_output=True,
                              timeout=120, env=tools_env).returncode == 0  # closes the hour before this one
        through = json.loads(subprocess.run([str(REPO / "scripts" / "licensectl"), "report", license_id, "--json"],
                                            text=True, capture_output=True, timeout=120,
                                            env=tools_env).stdout)["through"]
        last_closed = calendar.timegm(time.strptime(through[:13], "%Y-%m-%dT%H")) - 3600
        month = time.strftime("%Y-%m", time.gmtime(last_closed))
        signed = subprocess.run([str(REPO / "scripts" / "licensectl"), "statement", license_id, "--month", month],
                                text=True, capture_output=True, timeout=120, env=tools_env)
        assert signed.returncode == 0, signed.stderr
        (tmp_path / "statement.jws").write_text(signed.stdout)
        verified = subprocess.run([str(cli), "verify-statement", str(tmp_path / "statement.jws"), "--jwks",
                                   f"{facts['base_url']}/jwks"], text=True, capture_output=True, timeout=60,
                                  env=cli_env)
        assert verified.returncode == 0 and "signature: valid" in verified.stdout, verified.stdout + verified.stderr

        # the notifications walk-through: a live event reaches the listener, signed
        listen = next(line for line in lines if line.startswith("scripts/licensectl webhook-listen"))
        listener = subprocess.Popen([str(REPO / "scripts" / "licensectl"), *listen.rstrip(" &").split()[1:]],
                                    text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tools_env)
        try:
            started = listener.stderr.readline()  # its endpoint is made: events from now on reach it
            assert "listening on" in started, started + listener.stderr.read()
            event = next(line for line in lines if line.startswith("scripts/licensectl suspend"))
            assert subprocess.run(["bash", "-c", event], capture_output=True, timeout=120, env=tools_env,
                                  cwd=REPO).returncode == 0
            out, err = listener.communicate(timeout=60)  # the notify job runs every few seconds
        finally:
            listener.kill()
        assert listener.returncode == 0 and "license.suspended" in out and "signature ok" in out, out + err
        assert f"scripts/licensectl resume {license_id}" in lines

        # expiry warnings by e-mail: the walk-through's lines as printed, the mail read where it says
        first = next(i for i, line in enumerate(lines) if line.startswith("scripts/licensectl create-webhook mailto:"))
        mail_lines = lines[first:first + 4]
        for line in mail_lines[:3]:
            done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=120, env=tools_env,
                                  cwd=REPO)
            assert done.returncode == 0, line + done.stdout + done.stderr
        folder = Path(mail_lines[3].split()[1])
        deadline = time.monotonic() + 60
        while not (mails := sorted(folder.glob("*.eml"))) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert mails and "expires in 7 days (demo)" in mails[-1].read_text(), mails

        children = _descendants(dev.process.pid)
        assert children, "the stack runs its servers as children"

    time.sleep(0.5)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "orphans left behind"


def test_persist_keeps_tenants_licenses_sessions_and_accounts_across_restarts(tmp_path):
    with _dev(tmp_path, "--persist") as first:
        demo_key = first.facts["license_key"]
        with first.client(first.exported("OWNER")) as client:
            sold = client.post("/admin/licenses", json={"tenant": "demo", "max_seats": 4, "tier": "team"})
            assert sold.status_code == 201, sold.text
        user = first.exported("TOKEN")
        with first.client(user) as client:
            held = client.post("/acquire", json={"license_key": demo_key, "hardware_id": "kept-laptop"})
            assert held.status_code == 201, held.text
    key_file = tmp_path / "data" / "demo-license.json"
    assert key_file.stat().st_mode & 0o777 == 0o600 and demo_key in key_file.read_text()

    with _dev(tmp_path, "--persist") as second:
        assert second.facts["license_key"] == demo_key and demo_key in second.banner  # reused, not made again
        with second.client(second.exported("OWNER")) as client:
            assert "demo" in [t["id"] for t in client.get("/admin/tenants").json()["tenants"]]
            assert client.get(f"/admin/licenses/{sold.json()['license']['id']}").status_code == 200
            assert len(client.get("/admin/licenses", params={"tenant": "demo"}).json()["licenses"]) == 2
        with second.client(user) as client:  # the account (same uid) and its seat were kept
            assert client.post("/heartbeat", json={"session_id": held.json()["session_id"]}).json()["status"] == "ok"
        with second.client(second.exported("TOKEN")) as client:
            again = client.post("/acquire", json={"license_key": demo_key, "hardware_id": "kept-laptop"})
            assert again.status_code in (200, 201), again.text  # the demo key still opens its license


def _dev_command(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devstack.dev", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'scripts'}", **(env or {})})


def test_dev_has_help_and_real_options():
    answer = _dev_command("--help")
    assert answer.returncode == 0
    for option in ("--port", "--workers", "--threads", "--sweep-interval", "--state-dir", "DEV_STATE_DIR",
                   "--persist", "DEV_PERSIST"):
        assert option in answer.stdout


def test_dev_refuses_a_port_already_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        answer = _dev_command("--port", str(port), "--state-dir", str(tmp_path))
    assert answer.returncode != 0 and f"port {port} " in answer.stderr and "already in use" in answer.stderr
    assert "Traceback" not in answer.stderr
    assert not (tmp_path / "stack.json").exists()


def test_tools_name_the_state_dir_they_looked_in(tmp_path):
    looked = subprocess.run([str(REPO / "scripts" / "licensectl"), "licenses"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "DEV_STATE_DIR": str(tmp_path)})
    assert looked.returncode != 0 and str(tmp_path) in looked.stderr
