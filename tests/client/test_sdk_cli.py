"""`coditect-license` as installed in .venv: commands, human and --json output, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sdk_probes import seats_used, wait_for
from sdk_processes import run_cli

from coditect_license import License
from coditect_license.cli import EXIT_CODES


@pytest.fixture
def cli_env(server, user):
    return {"CODITECT_LICENSE_SERVER": server, "CODITECT_ID_TOKEN": user.token()}


def test_acquire_status_release(cli_env, make_license, server, user):
    lic = make_license(seats=2, lease_ttl_s=60, tier="pro", features=("build",))
    env = {**cli_env, "CODITECT_LICENSE_KEY": lic.key}

    acquired = run_cli("acquire", env=env)
    assert acquired.returncode == 0, acquired.stderr
    assert "seat acquired (1/2 in use)" in acquired.stdout and "features: build" in acquired.stdout
    status = run_cli("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["session"]["valid"] and shown["server"]["seats"] == {"used": 1, "max": 2} and shown["usable"]
    human = run_cli("status", env=env)
    assert "session: valid" in human.stdout and "1/2 seats in use" in human.stdout

    again = run_cli("acquire", "--json", env=env)  # same user + machine: the same seat
    assert json.loads(again.stdout)["session_id"] == shown["session"]["session_id"]
    released = run_cli("release", env=env)
    assert released.returncode == 0 and "released" in released.stdout
    assert seats_used(server, lic.key, user.token()) == 0
    nothing = run_cli("release", env=env)
    assert nothing.returncode == EXIT_CODES["NO_LEASE"] == 20


def test_exit_codes_per_error(cli_env, make_license, user, other_user, server):
    full = make_license(seats=1, lease_ttl_s=60)
    with License(full.key, server=server, token_provider=other_user.provider(), hardware_id="elsewhere"):
        refused = run_cli("acquire", "--key", full.key, "--json", env=cli_env)
        status_full = run_cli("status", "--key", full.key, env=cli_env)
    assert refused.returncode == 10
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "NO_SEAT_AVAILABLE" and error["seats"] == {"used": 1, "max": 1}
    assert error["exit_code"] == 10 and 0 < error["retry_after"] <= 60
    assert "the license's only seat is in use; try again later" in refused.stderr and "ends in" not in refused.stderr
    assert status_full.returncode == 10 and "NO_SEAT_AVAILABLE" in status_full.stdout

    cases = {
        8: ("acquire", "--key", "CDT-0000-0000-0000-0000"),
        7: ("acquire", "--key", make_license(suspended=True).key),
        4: ("acquire", "--key", full.key, "--token", "junk"),
        3: ("acquire", "--key", full.key, "--server", "http://127.0.0.1:9", "--timeout", "1"),
        2: ("acquire",),
        20: ("return", "--key", full.key),
    }
    for code, args in cases.items():
        result = run_cli(*args, env=cli_env)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("coditect-license: ") and "Traceback" not in result.stderr
    assert "no license has this key" in run_cli(*cases[8], env=cli_env).stderr
    assert "cannot reach the license server" in run_cli(*cases[3], env=cli_env).stderr


def test_acquire_hold_keeps_the_seat_until_sigterm(cli_env, make_license, server, user):
    lic = make_license(seats=1, lease_ttl_s=10, heartbeat_interval_s=1)
    script = Path(sys.executable).parent / "coditect-license"
    holder = subprocess.Popen([str(script), "acquire", "--hold", "--key", lic.key],
                              env={**os.environ, **cli_env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "holding seat" in holder.stdout.readline()
        wait_for(lambda: seats_used(server, lic.key, user.token()) == 1, 5, "the held seat")
        holder.send_signal(signal.SIGTERM)
        assert holder.wait(20) == 0
        assert "seat released" in holder.stdout.read()
        assert seats_used(server, lic.key, user.token()) == 0
    finally:
        if holder.poll() is None:
            holder.kill()


def test_run_holds_a_seat_for_the_command(cli_env, make_license, server, user):
    lic = make_license(seats=1, lease_ttl_s=30)
    child = ("import os, sys; print(os.environ['CODITECT_LEASE_SESSION']); "
             "sys.exit(0 if os.environ['CODITECT_LEASE_TOKEN'].count('.') == 2 else 9)")
    ran = run_cli("run", "--key", lic.key, "--", sys.executable, "-c", child, env=cli_env)
    assert ran.returncode == 0, ran.stderr and ran.stdout.startswith(lic.license_id)
    failing = run_cli("run", "--key", lic.key, "--", sys.executable, "-c", "import sys; sys.exit(7)", env=cli_env)
    assert failing.returncode == 7  # the command's own exit code
    assert seats_used(server, lic.key, user.token()) == 0
