"""terraform/ and cloudbuild.yaml are checked statically (no terraform binary here)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
TF_FILES = sorted((REPO / "terraform").rglob("*.tf"))


def _load(path: Path) -> dict:
    with path.open() as handle:
        return hcl2.load(handle)


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_terraform_file_parses(path):
    assert _load(path) is not None


def test_every_function_is_deployed_by_terraform():
    functions = sorted(p.parent.name for p in (REPO / "functions").glob("*/main.py"))
    module = (REPO / "terraform" / "modules" / "functions" / "main.tf").read_text()
    for name in functions:
        assert f"    {name} " in module, f"{name} missing from terraform/modules/functions"


@pytest.mark.parametrize("path", sorted((REPO / "terraform").rglob("variables.tf")), ids=lambda p: str(p.relative_to(REPO)))
def test_every_terraform_variable_is_typed_and_described(path):
    for block in _load(path).get("variable", []):
        [(name, body)] = block.items()
        assert "type" in body and body.get("description"), f"{path}: {name}"


def test_environments_are_the_same_stack_with_their_own_sizes():
    stack = _load(REPO / "terraform" / "modules" / "license_server" / "main.tf")
    assert sorted(m.strip('"') for block in stack["module"] for m in block) == sorted(
        ["network", "redis", "firestore", "kms", "functions", "monitoring", "delivery"])
    sizes = {}
    for env in ("staging", "production"):
        [root] = [block['"license_server"'] for block in _load(REPO / "terraform" / "environments" / env / "main.tf")["module"]]
        value = lambda key: root[key].strip('"') if isinstance(root[key], str) else root[key]  # noqa: E731
        assert value("source") == "../../modules/license_server" and value("environment") == env
        sizes[env] = (value("redis_tier"), value("kms_protection_level"), value("min_instances_signing"))
        versions = (REPO / "terraform" / "environments" / env / "versions.tf").read_text()
        assert 'version = "= ' in versions and 'backend "gcs"' in versions  # pinned provider, remote state
    assert sizes == {"staging": ("BASIC", "SOFTWARE", 0), "production": ("STANDARD_HA", "HSM", 1)}


@pytest.mark.parametrize("env", ["staging", "production"])
def test_an_initialized_environment_commits_its_provider_lock(env):
    """The lock (provider versions and hashes) is made by the first `terraform init`, which
    needs the registry, unreachable from here (docs/operations.md, first deploy). From
    then on it is committed, and the pipeline's `init -lockfile=readonly` refuses to run
    without it: an environment initialized in this checkout must have it tracked, and a
    lock must pin exactly the versions versions.tf requires."""
    root = REPO / "terraform" / "environments" / env
    lock = root / ".terraform.lock.hcl"
    if (root / ".terraform").exists():
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(lock)], cwd=REPO, capture_output=True)
        assert lock.exists() and tracked.returncode == 0, f"commit {lock.relative_to(REPO)} (made by terraform init)"
    if lock.exists():
        required = dict(re.findall(r'source\s*=\s*"hashicorp/(\w+)"\s*\n\s*version\s*=\s*"= ([\d.]+)"',
                                   (root / "versions.tf").read_text()))
        locked = dict(re.findall(r'provider "registry.terraform.io/hashicorp/(\w+)" \{\s*version\s*=\s*"([\d.]+)"',
                                 lock.read_text()))
        assert locked == required


def test_client_sdks_are_denied_all_of_firestore():
    module = _load(REPO / "terraform" / "modules" / "firestore" / "main.tf")
    resources = {kind.strip('"'): body for block in module["resource"] for kind, body in block.items()}
    release = resources["google_firebaserules_release"]['"firestore"']
    assert release["name"].strip('"') == "cloud.firestore" and "google_firebaserules_ruleset.firestore" in release["ruleset_name"]
    rules = (REPO / "terraform" / "modules" / "firestore" / "firestore.rules").read_text()
    allows = [line.strip() for line in rules.splitlines() if line.strip().startswith("allow")]
    assert allows == ["allow read, write: if false;"] and "match /{document=**}" in rules


def test_the_admin_function_may_read_accounts_and_no_other_function_may():
    """It checks every administrator's account (check_account); that needs firebaseauth.viewer."""
    module = (REPO / "terraform" / "modules" / "functions" / "main.tf").read_text()
    assert module.count("roles/firebaseauth.viewer") == 1
    assert 'role    = "roles/firebaseauth.viewer"\n  member  = "serviceAccount:${google_service_account.function["admin"].email}"' in module
    assert "checks_accounts=True" in (REPO / "functions" / "admin" / "main.py").read_text()


def test_checkov_finds_no_failed_check_in_terraform():
    """Every skip carries its reason in a #checkov:skip comment next to the resource."""
    import json
    import subprocess

    checkov = REPO / ".venv-checkov" / "bin" / "checkov"
    assert checkov.exists(), "checkov is missing: ./scripts/test installs it into .venv-checkov"
    run = subprocess.run([str(checkov), "-d", str(REPO / "terraform"), "--skip-download", "-o", "json"],
                         capture_output=True, text=True, timeout=300)
    report = json.loads(run.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] >= 20
    for skipped in report["results"]["skipped_checks"]:
        assert skipped["check_result"].get("suppress_comment"), f"{skipped['check_id']} skipped without a reason"
