"""Every cloudbuild.yaml step's script runs in a fresh clone (issue 12, offline check 5).

Each step is run as Cloud Build would run it — its entrypoint (or the builder's: `docker`),
its args with the substitutions filled in, its `dir`, in order, in a copy of the tree with
nothing built yet — with shims for the programs only the cloud has (gcloud, terraform,
docker) on PATH. The shims record what they were asked and answer as the cloud would
(or, where a test says so, fail). Real programs (bash, sh, python3, the repository's
scripts) run for real: a step that writes where nothing created a directory, reads a file
no earlier step wrote, or swallows a failure shows up here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BUILD = yaml.safe_load((REPO / "cloudbuild.yaml").read_text())
BUILT_IN = {"PROJECT_ID": "licenses-staging", "PROJECT_NUMBER": "123456789012", "SHORT_SHA": "abc1234",
            "COMMIT_SHA": "abc1234" * 5 + "abcde", "BUILD_ID": "b-1", "LOCATION": "europe-west1"}
FUNCTIONS = sorted(p.parent.name for p in (REPO / "functions").glob("*/main.py"))

SHIM = r"""#!/usr/bin/env bash
# {name} shim: records the call, answers from $SHIM_DIR/answers/{name}/<first args joined by _>
args="$*"
echo "{name} ${args//$'\n'/ }" >> "$SHIM_DIR/calls.txt"   # one line per call
key="$(printf '%s_' "$1" "$2" "$3" | sed 's/_*$//')"
for candidate in "$key" "$(printf '%s_' "$1" "$2" | sed 's/_*$//')" "$1"; do
  answer="$SHIM_DIR/answers/{name}/$candidate"
  if [ -f "$answer.fail" ]; then cat "$answer.fail" >&2; exit 1; fi
  if [ -f "$answer" ]; then cat "$answer"; exit 0; fi
done
exit 0
"""


def _npm_machine_settings() -> dict[str, str]:
    """What this machine's npm needs to reach the registry (a proxy's CA) and its download
    cache: facts of the machine, not of the pipeline (Cloud Build's node image has neither)."""
    found = {name: os.environ[name] for name in ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE") if name in os.environ}
    for key in ("cafile", "cache"):
        value = subprocess.run(["npm", "config", "get", key], capture_output=True, text=True).stdout.strip()
        if value and value not in ("null", "undefined"):
            found[f"npm_config_{key}"] = value
    return found


_NPM_MACHINE = _npm_machine_settings()


def _fresh_copy(destination: Path) -> None:
    """The tree as a fresh clone of it would be: tracked and new (not ignored) files only."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _substitute(text: str, substitutions: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in substitutions:
            raise AssertionError(f"${name} is neither a substitution of cloudbuild.yaml nor a built-in one "
                                 "(write $$ for the shell's own variables in upper case)")
        return substitutions[name]
    # Cloud Build substitutes $NAME / ${NAME} for _USER and built-in (upper-case) names only.
    return re.sub(r"(?<!\$)\$(?:\{([A-Z_][A-Z0-9_]*)\}|([A-Z_][A-Z0-9_]*))", replace, text)


class Pipeline:
    def __init__(self, root: Path, shims: Path):
        self.root, self.shims = root, shims
        substitutions = dict(BUILT_IN)
        for key, value in BUILD["substitutions"].items():
            substitutions[key] = _substitute(str(value), substitutions)
        self.substitutions = substitutions
        for name in ("gcloud", "terraform", "docker"):
            shim = shims / "bin" / name
            shim.parent.mkdir(parents=True, exist_ok=True)
            shim.write_text(SHIM.replace("{name}", name))
            shim.chmod(0o755)
        self.answer("gcloud", "run_services_list", "".join(f"staging-{fn}\n" for fn in FUNCTIONS))
        self.answer("gcloud", "run_services_describe", "staging-fn-00007-abc\n")
        self.answer("terraform", "output_-json_function_sources", json.dumps({fn: f"{fn}-0.zip" for fn in FUNCTIONS}))
        self.answer("terraform", "output_-raw_function_url_template",
                    "https://europe-west1-licenses-staging.cloudfunctions.net/staging-{name}")

    def answer(self, program: str, key: str, text: str, *, fail: bool = False) -> None:
        path = self.shims / "answers" / program / (key + (".fail" if fail else ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def calls(self) -> list[str]:
        path = self.shims / "calls.txt"
        return path.read_text().splitlines() if path.exists() else []

    def run(self, step_id: str) -> subprocess.CompletedProcess:
        [step] = [s for s in BUILD["steps"] if s["id"] == step_id]
        args = [_substitute(a, self.substitutions) for a in step.get("args", [])]
        command = [step["entrypoint"], *args] if "entrypoint" in step else ["docker", *args]
        assert "entrypoint" in step or step["name"] == "${_DOCKER_IMAGE}", f"{step_id}: which program runs?"
        env = {"PATH": f"{self.shims / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(self.shims),
               "SHIM_DIR": str(self.shims), **_NPM_MACHINE}
        for pair in step.get("env", []):
            key, _, value = _substitute(pair, self.substitutions).partition("=")
            env[key] = value
        for secret in step.get("secretEnv", []):
            env[secret] = f"secret-{secret.lower()}"
        cwd = self.root / _substitute(step.get("dir", "."), self.substitutions)
        return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


CONSOLE_PAGE = Path("functions") / "console" / "web" / "dist"


@pytest.fixture
def pipeline(tmp_path) -> Pipeline:
    """A fresh clone after the console step (its page as this checkout built it: the one test
    that runs every step builds it again from the lock file, as Cloud Build does)."""
    _fresh_copy(tmp_path / "workspace")
    shutil.copytree(REPO / CONSOLE_PAGE, tmp_path / "workspace" / CONSOLE_PAGE)
    return Pipeline(tmp_path / "workspace", tmp_path / "shims")


def _ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_every_step_runs_in_a_fresh_clone_in_order(pipeline):
    shutil.rmtree(pipeline.root / CONSOLE_PAGE)
    for step in BUILD["steps"]:
        _ok(pipeline.run(step["id"]))
    root = pipeline.root
    # the console's page, built from the lock file: byte for byte this checkout's
    assert (root / CONSOLE_PAGE / "manifest.json").read_bytes() == (REPO / CONSOLE_PAGE / "manifest.json").read_bytes()
    bundles = json.loads((root / "build" / "bundles.json").read_text())
    assert sorted(bundles) == FUNCTIONS
    assert all((root / "build" / "bundles" / archive).exists() for archive in bundles.values())
    assert (root / "build" / "previous-revisions.txt").read_text().splitlines() == [
        f"staging-{fn} staging-fn-00007-abc" for fn in FUNCTIONS]
    assert (root / "build" / "smoke-status").read_text().strip() == "0"
    calls = pipeline.calls()
    [apply] = [c for c in calls if c.startswith("terraform apply")]
    assert "-target=module.license_server.module.functions.google_cloudfunctions2_function.fn" in apply
    assert json.loads(apply.split("-var function_sources=", 1)[1]) == bundles
    [smoke] = [c for c in calls if c.startswith("docker run") and "tests/smoke" in c]
    assert "--network bridge" in smoke and "SMOKE_URL_TEMPLATE=https://europe-west1-licenses-staging" in smoke
    assert not any("update-traffic" in c for c in calls)  # smoke passed: nothing rolled back


def test_a_failed_describe_fails_the_record_of_what_to_roll_back_to(pipeline):
    pipeline.answer("gcloud", "run_services_describe", "ERROR: (gcloud.run.services.describe) PERMISSION_DENIED",
                    fail=True)
    _ok(pipeline.run("bundles"))
    result = pipeline.run("previous-revisions")
    assert result.returncode != 0 and "PERMISSION_DENIED" in result.stderr


def test_a_first_deploy_records_no_revision_and_has_no_state_to_restore(pipeline):
    pipeline.answer("gcloud", "run_services_list", "")
    pipeline.answer("terraform", "output_-json_function_sources", 'Error: Output "function_sources" not found',
                    fail=True)
    for step_id in ("bundles", "previous-revisions", "upload", "deploy"):
        _ok(pipeline.run(step_id))
    recorded = (pipeline.root / "build" / "previous-revisions.txt").read_text().splitlines()
    assert recorded and all(line.endswith(" -") for line in recorded)
    assert (pipeline.root / "build" / "previous-sources.json").read_text() == ""


def test_unreadable_state_fails_the_deploy_before_it_applies(pipeline):
    pipeline.answer("terraform", "output_-json_function_sources", "Error: Failed to load state: 403", fail=True)
    for step_id in ("bundles", "previous-revisions", "upload"):
        _ok(pipeline.run(step_id))
    result = pipeline.run("deploy")
    assert result.returncode != 0 and "Failed to load state" in result.stderr
    assert not any(c.startswith("terraform apply") for c in pipeline.calls())


def test_a_failed_smoke_test_rolls_back_traffic_and_state_and_fails_the_build(pipeline):
    pipeline.answer("docker", "run_--rm_--network", "1 failed", fail=True)
    for step_id in ("bundles", "previous-revisions", "upload", "deploy"):
        _ok(pipeline.run(step_id))
    assert pipeline.run("smoke").returncode != 0
    assert (pipeline.root / "build" / "smoke-status").read_text().strip() == "1"
    _ok(pipeline.run("rollback-on-smoke-failure"))
    restore = pipeline.run("restore-state-on-smoke-failure")
    assert restore.returncode == 1 and "rolled back" in restore.stderr
    calls = pipeline.calls()
    assert sum("run services update-traffic" in c for c in calls) == len(FUNCTIONS)
    applies = [c for c in calls if c.startswith("terraform apply")]
    assert len(applies) == 2
    assert json.loads(applies[1].split("-var function_sources=", 1)[1]) == {fn: f"{fn}-0.zip" for fn in FUNCTIONS}


def test_a_rollback_that_cannot_switch_traffic_fails_loudly(pipeline):
    pipeline.answer("gcloud", "run_services_update-traffic", "ERROR: PERMISSION_DENIED", fail=True)
    pipeline.answer("docker", "run_--rm_--network", "1 failed", fail=True)
    for step_id in ("bundles", "previous-revisions", "upload", "deploy", "smoke"):
        pipeline.run(step_id)
    result = pipeline.run("rollback-on-smoke-failure")
    assert result.returncode != 0


@pytest.mark.parametrize(("status", "expected_exit"), [(200, 1), (404, 0), (None, 0)])
def test_a_step_that_can_get_a_token_refuses_to_run(status, expected_exit):
    """scripts/assert-no-credentials against a metadata server that gives a token, refuses, or is absent."""
    import http.server
    import threading

    class Metadata(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            assert self.headers["Metadata-Flavor"] == "Google"
            self.send_response(status or 500)
            self.end_headers()
            self.wfile.write(b'{"access_token": "ya29.x"}')

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Metadata)
    url = f"http://127.0.0.1:{server.server_port}/token"
    if status is None:
        server.server_close()
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = subprocess.run([sys.executable, str(REPO / "scripts" / "assert-no-credentials")], capture_output=True,
                                text=True, env={"PATH": os.environ["PATH"], "METADATA_TOKEN_URL": url}, timeout=30)
    finally:
        if status is not None:
            server.shutdown()
            server.server_close()
    assert result.returncode == expected_exit, result.stderr
