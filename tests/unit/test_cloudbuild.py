"""cloudbuild.yaml does what the delivery pipeline promises (checked statically)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BUILD = yaml.safe_load((REPO / "cloudbuild.yaml").read_text())
STEPS = {step["id"]: step for step in BUILD["steps"]}


def _script(step: dict) -> str:
    return " ".join(step.get("args", []))


def test_every_step_has_an_id_and_a_pinned_builder_image():
    assert all("id" in step for step in BUILD["steps"])
    for step in BUILD["steps"]:
        substitution = re.fullmatch(r"\$\{(_[A-Z_]+)\}", step["name"])
        assert substitution, f"{step['id']}: builder image must come from a substitution"
        image = BUILD["substitutions"][substitution.group(1)]
        assert re.search(r":\d[\w.-]*$", image) and not image.endswith(":latest"), f"{image} is not pinned"


def test_the_pipeline_tests_bundles_deploys_smokes_and_rolls_back_in_order():
    assert list(STEPS) == ["test-image", "test", "console", "bundles", "previous-revisions", "upload", "deploy",
                           "smoke", "rollback-on-smoke-failure", "restore-state-on-smoke-failure"]
    assert STEPS["bundles"]["waitFor"] == ["console"]  # the console's bundle carries its built page
    assert "./scripts/test" in _script(STEPS["test"])
    assert "scripts/build-bundles" in _script(STEPS["bundles"])
    assert set(STEPS["upload"]["waitFor"]) == {"test", "bundles"}  # nothing ships untested
    assert "--no-clobber" in _script(STEPS["upload"])  # content-addressed: unchanged stays unchanged
    assert set(STEPS["deploy"]["waitFor"]) == {"upload", "previous-revisions"}
    assert "terraform apply" in _script(STEPS["deploy"]) and "function_url_template" in _script(STEPS["deploy"])
    assert STEPS["smoke"]["waitFor"] == ["deploy"] and STEPS["smoke"]["allowFailure"] is True
    assert "tests/smoke" in _script(STEPS["smoke"]) and "smoke-status" in _script(STEPS["smoke"])
    rollback = _script(STEPS["rollback-on-smoke-failure"])
    assert STEPS["rollback-on-smoke-failure"]["waitFor"] == ["smoke"]
    assert "scripts/rollback build/previous-revisions.txt" in rollback
    assert STEPS["restore-state-on-smoke-failure"]["waitFor"] == ["rollback-on-smoke-failure"]
    assert "exit 1" in _script(STEPS["restore-state-on-smoke-failure"])


def test_steps_that_run_repository_code_and_install_packages_hold_no_credentials():
    """Such steps run in a container on the default bridge network (no build metadata
    server) and first prove it; the deploy steps run only gcloud and terraform."""
    for step_id in ("test", "smoke"):
        step = STEPS[step_id]
        assert step["name"] == "${_DOCKER_IMAGE}", step_id
        script = _script(step)
        assert re.search(r"\brun --rm --network bridge\b", script), step_id
        assert "cloudbuild" not in script, f"{step_id} must not join the cloudbuild network"
        assert script.index("scripts/assert-no-credentials") < script.index("pytest" if step_id == "smoke" else
                                                                            "./scripts/test")
    assert "--network" not in STEPS["test-image"]["args"]  # the image's installs get no credentials either


def test_deploys_apply_functions_only():
    targets = (REPO / "scripts" / "deploy-targets").read_text().split()
    assert targets and all(t.startswith("-target=module.license_server.module.functions.") for t in targets)
    for step_id in ("deploy", "restore-state-on-smoke-failure"):
        assert "$(cat ../../../scripts/deploy-targets)" in _script(STEPS[step_id])
    assert "-lockfile=readonly" in _script(STEPS["deploy"])  # providers exactly as committed


def test_the_test_step_runs_on_an_image_with_what_scripts_test_cannot_install():
    build = STEPS["test-image"]["args"]
    assert build[build.index("--file") + 1] == ".ci/Dockerfile"
    assert build[build.index("--tag") + 1] == "${_TEST_IMAGE}" and "${_TEST_IMAGE}" in STEPS["test"]["args"]
    dockerfile = (REPO / ".ci" / "Dockerfile").read_text()
    # the Cloud SDK of the local machines (LOCAL_STACK.md: 528), so CI runs the same emulator
    sdk = re.search(r"ARG CLOUD_SDK_VERSION=(\S+)", dockerfile).group(1)
    assert sdk.startswith("528.0.0") and BUILD["substitutions"]["_TEST_IMAGE"].endswith(":528.0.0")
    for package in ("google-cloud-cli-firestore-emulator", "openjdk-17-jre-headless", "redis-server"):
        assert package in dockerfile
    node = int(re.search(r"ARG NODE_IMAGE=node:(\d+)", dockerfile).group(1))
    # the Node firebase-tools (the Auth emulator) requires: its engines, as bootstrap installed it
    from devstack.auth_emulator import FIREBASE_TOOLS_VERSION

    package = REPO / ".tools" / f"firebase-tools-{FIREBASE_TOOLS_VERSION}" / "node_modules" / "firebase-tools"
    engines = json.loads((package / "package.json").read_text())["engines"]["node"]  # e.g. ">=20.0.0 || >=22.0.0"
    lowest = min(int(m) for m in re.findall(r">=\s*(\d+)", engines))
    assert node >= lowest, f".ci/Dockerfile's Node {node} does not satisfy firebase-tools' engines {engines!r}"


def test_each_environment_has_a_terraform_root_the_deploy_step_can_enter():
    assert STEPS["deploy"]["dir"] == "terraform/environments/${_ENVIRONMENT}"
    assert BUILD["substitutions"]["_ENVIRONMENT"] == "staging"
    for env in ("staging", "production"):
        assert (REPO / "terraform" / "environments" / env / "main.tf").exists()
    trigger = (REPO / "terraform" / "modules" / "delivery" / "main.tf").read_text()
    assert re.search(r"_ENVIRONMENT += var\.environment", trigger)  # the production trigger substitutes production


def test_smoke_secrets_come_from_secret_manager():
    secrets = {s["env"] for s in BUILD["availableSecrets"]["secretManager"]}
    assert set(STEPS["smoke"]["secretEnv"]) == secrets


def test_rollback_puts_each_service_back_and_skips_first_deploys(tmp_path):
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "bin" / "gcloud"
    fake.parent.mkdir()
    fake.write_text(f'#!/usr/bin/env bash\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    revisions = tmp_path / "previous.txt"
    revisions.write_text("staging-acquire staging-acquire-00007-abc\nstaging-admin -\n")
    run = subprocess.run([str(REPO / "scripts" / "rollback"), str(revisions), "europe-west1"], capture_output=True,
                         text=True, env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"})
    assert run.returncode == 0, run.stderr
    assert calls.read_text().splitlines() == [
        "run services update-traffic staging-acquire --region europe-west1 "
        "--to-revisions staging-acquire-00007-abc=100 --quiet"
    ]
    assert "staging-admin had no previous revision" in run.stderr
