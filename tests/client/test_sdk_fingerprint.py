"""The hardware id: stable, hashed, deliberate in containers, accepted by the server."""

from __future__ import annotations

import re
import subprocess
import sys

from sdk_processes import run_cli

from coditect_license import License, fingerprint

PRINT_ID = "from coditect_license import hardware_id; print(hardware_id())"


def _in_child(env=None) -> str:
    import os

    return subprocess.run([sys.executable, "-c", PRINT_ID], env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, check=True, timeout=30).stdout.strip()


def test_stable_across_processes_and_changed_by_the_override():
    first, second = _in_child(), _in_child()
    assert first == second == fingerprint.hardware_id()
    overridden = _in_child({"CODITECT_FINGERPRINT": "ci-runner-7"})
    assert overridden != first and overridden == _in_child({"CODITECT_FINGERPRINT": "ci-runner-7"})
    assert overridden.startswith("override-") and "ci-runner-7" not in overridden
    workload = _in_child({"CODITECT_WORKLOAD_ID": "github/acme/build#42"})
    assert workload.startswith("workload-") and workload not in (first, overridden)
    for value in (first, overridden, workload):
        assert 1 <= len(value) <= 128 and re.fullmatch(r"[a-z0-9-]+", value)


def test_sources_in_order_and_never_raw():
    raw = "4c4c4544-0042-3510-8052-b4c04f565931"

    def machine():
        return "machine-id", raw

    env = {}
    import coditect_license.fingerprint as fp

    original = fp.in_container
    try:
        fp.in_container = lambda: False
        bare = fp.compute(env, machine=machine)
        assert bare.source == "machine-id" and raw not in bare.hardware_id
        assert bare == fp.compute(env, machine=machine)
        assert fp.compute(env, machine=lambda: None).source in ("mac", "hostname")  # the last resorts
        fp.in_container = lambda: True
        # in a container the image's machine id is not enough: the container's identity joins it
        contained = fp.compute(env, machine=machine)
        assert contained.source == "container" and contained.hardware_id != bare.hardware_id
    finally:
        fp.in_container = original
    pod = fp.compute({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "POD_NAMESPACE": "ci", "POD_NAME": "build-7"},
                     machine=machine)
    other_pod = fp.compute({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "POD_NAMESPACE": "ci", "POD_NAME": "build-8"},
                           machine=machine)
    assert pod.source == "kubernetes" and pod != other_pod
    assert fp.compute({"CODITECT_FINGERPRINT": "x", "CODITECT_WORKLOAD_ID": "y"}).source == "override"


def test_the_server_accepts_it_and_two_overrides_are_two_machines(server, make_license, user, monkeypatch):
    lic = make_license(seats=3, lease_ttl_s=30)
    monkeypatch.setenv("CODITECT_FINGERPRINT", "job-1")
    with License(lic.key, server=server, token_provider=user.provider()) as first:
        assert first.claims.hardware_id == fingerprint.hardware_id()
        monkeypatch.setenv("CODITECT_FINGERPRINT", "job-2")
        with License(lic.key, server=server, token_provider=user.provider()) as second:
            assert second.session_id != first.session_id and second.seats["used"] == 2
        monkeypatch.setenv("CODITECT_FINGERPRINT", "job-1")
        with License(lic.key, server=server, token_provider=user.provider()) as again:
            assert again.session_id == first.session_id  # same user + machine: the same seat


def test_cli_fingerprint():
    shown = run_cli("fingerprint", "--details")
    assert shown.returncode == 0 and shown.stdout.splitlines()[0] == fingerprint.hardware_id()
    assert shown.stdout.splitlines()[1].startswith("source: ")
