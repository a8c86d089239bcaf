"""The first deploy in docs/operations.md works as written (issue 12, offline check 7).

No cloud is reachable, so what can be checked is checked: the commands it runs exist with
the options it gives them; every Terraform `-target` and `-var` names something in the
environment's root; the secrets and accounts it makes are the ones cloudbuild.yaml's smoke
step reads; and its account step (step 3), run as written against the Firebase Auth
emulator, makes accounts with which the smoke tests (tests/smoke, signing in with the
passwords) pass against the functions.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.terraform_tree import MODULES, TERRAFORM, blocks, load, module_calls, unquote

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "operations.md").read_text()
BUILD = yaml.safe_load((REPO / "cloudbuild.yaml").read_text())


def _first_deploy() -> str:
    section = DOC.split("## First deploy, from zero", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


SCRIPT = _first_deploy()


def _step(number: int) -> str:
    """The lines of step `number` (from its "# N." comment to the next step's)."""
    return re.search(rf"^(# {number}\..*?)(?=^# {number + 1}\.|\Z)", SCRIPT, re.S | re.M).group(1)


def _commands() -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", SCRIPT)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_every_licensectl_command_of_the_first_deploy_exists_with_its_options():
    used = [re.search(r"scripts/licensectl (\S+)(.*)", c) for c in _commands() if "scripts/licensectl " in c]
    assert len(used) >= 5
    for match in used:
        command, rest = match.group(1), match.group(2)
        helped = subprocess.run([str(REPO / "scripts" / "licensectl"), command, "--help"], capture_output=True,
                                text=True, timeout=60)
        assert helped.returncode == 0, f"licensectl {command}: {helped.stderr}"
        for option in re.findall(r"(?<!\S)(--[a-z][a-z-]*)", rest.split("|")[0]):
            assert option in helped.stdout, f"licensectl {command} has no {option}"


def test_every_target_and_variable_names_something_in_the_environment():
    stack = module_calls(MODULES / "license_server" / "main.tf")
    resources = {f"{t}.{n}" for t, n, _ in blocks(MODULES / "license_server" / "main.tf", "resource")}
    targets = re.findall(r"-target=(\S+)", SCRIPT)
    assert targets
    for target in targets:
        assert target.startswith("module.license_server."), f"{target}: a root holds module.license_server"
        rest = target.removeprefix("module.license_server.")
        if rest.startswith("module."):
            assert rest.removeprefix("module.") in stack, target
        else:
            assert rest in resources, target
    root = TERRAFORM / "environments" / "staging"
    variables = {unquote(name) for block in load(root / "variables.tf")["variable"] for name in block}
    for name in re.findall(r"-var \"?(\w+)=", re.sub(r"\$VARS", "-var project_id=x -var source_bucket=x", SCRIPT)):
        assert name in variables, f"-var {name}: no such variable in terraform/environments/staging"
    assert "-backend-config=bucket=$PROJECT-license-server-tfstate" in SCRIPT
    assert BUILD["substitutions"]["_TF_STATE_BUCKET"] == "${PROJECT_ID}-license-server-tfstate"
    # the lock the pipeline's `init -lockfile=readonly` needs is committed by the first init
    assert "git add .terraform.lock.hcl" in SCRIPT


def test_the_secrets_and_accounts_made_are_those_the_smoke_step_reads():
    prefix = BUILD["substitutions"]["_SMOKE_SECRETS_PREFIX"]
    read = {re.search(r"secrets/\$\{_SMOKE_SECRETS_PREFIX\}-([\w-]+)/", s["versionName"]).group(1)
            for s in BUILD["availableSecrets"]["secretManager"]}
    made = set(re.findall(rf"gcloud secrets create {re.escape(prefix)}-([\w-]+)", SCRIPT))
    assert made == read
    [smoke] = [s for s in BUILD["steps"] if s["id"] == "smoke"]
    emails = dict(e.split("=", 1) for e in smoke["env"])
    owner = emails["SMOKE_OWNER_EMAIL"].replace("${PROJECT_ID}", "$PROJECT")
    user = emails["SMOKE_USER_EMAIL"].replace("${PROJECT_ID}", "$PROJECT")
    accounts = _step(3)
    assert re.search(rf"grant-role {re.escape(owner)} --role owner\b", re.sub(r"\\\n\s*", " ", accounts))
    assert f"create-user {user}" in accounts


def test_the_documented_accounts_pass_the_smoke_tests(stack, auth_emulator, tmp_path_factory):
    """Step 3 as written, against the Auth emulator; then tests/smoke as those accounts."""
    log = tmp_path_factory.mktemp("logs") / "functions-first-deploy.log"
    server = stack.serve_functions(workers=1, threads=4, log_path=log,
                                   extra_env={"FIREBASE_AUTH_EMULATOR_HOST": auth_emulator.host,
                                              "ADMIN_CHECK_ACCOUNTS": "1"})
    try:
        project = stack.project_id
        passwords = {"OWNER_PASSWORD": secrets.token_urlsafe(12), "USER_PASSWORD": secrets.token_urlsafe(12)}
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("LICENSECTL_", "SMOKE_"))},
               **passwords, "PROJECT": project, "FIREBASE_AUTH_EMULATOR_HOST": auth_emulator.host}
        # the step, less its interactive `read` of the passwords (given above)
        lines = [line for line in _step(3).splitlines() if not line.lstrip().startswith("read ")]
        script = "set -euo pipefail\ncd " + shlex.quote(str(REPO)) + "\n" + "\n".join(lines)
        made = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=180,
                              stdin=subprocess.DEVNULL)
        assert made.returncode == 0, made.stderr
        smoke = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/smoke"], cwd=REPO,
            env={**env, "SMOKE_BASE_URL": server.base_url, "SMOKE_FIREBASE_API_KEY": "emulator-accepts-any-key",
                 "SMOKE_OWNER_EMAIL": f"smoke-owner@{project}.test",
                 "SMOKE_OWNER_PASSWORD": passwords["OWNER_PASSWORD"],
                 "SMOKE_USER_EMAIL": f"smoke-user@{project}.test",
                 "SMOKE_USER_PASSWORD": passwords["USER_PASSWORD"],
                 "SMOKE_TENANT": f"smoke-{secrets.token_hex(3)}"},
            capture_output=True, text=True, timeout=300)
        assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-2000:]
        assert re.search(r"\d+ passed", smoke.stdout)
    finally:
        server.stop()


@pytest.mark.parametrize("step", range(1, 11))
def test_the_first_deploy_has_its_ten_steps_in_order(step):
    assert re.search(rf"^# {step}\. ", SCRIPT, re.M)
