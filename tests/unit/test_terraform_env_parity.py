"""What each function reads from its environment and what Terraform gives it agree, both ways.

The code's side is read from Settings.from_env itself (a recording environment), and what
a function's bundle needs from its requirements.in; Terraform's side from
terraform/modules/functions/main.tf (plain and Secret Manager-backed variables).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import hcl2

from shared.config import Settings

REPO = Path(__file__).resolve().parents[2]
# Read by a library rather than by Settings: gRPC's own log level.
READ_BY_LIBRARIES = {"GRPC_VERBOSITY"}
# Local stand-ins and test overrides: never set in the cloud.
LOCAL_ONLY = {"FIREBASE_AUTH_EMULATOR_HOST", "KMS_ENDPOINT", "ID_TOKEN_CERTS_URL", "OIDC_CERTS_URL",
              "ADMIN_CHECK_ACCOUNTS"}


class _RecordingEnv(Mapping[str, str]):
    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        raise KeyError(key)

    def get(self, key: str, default: object = None) -> str:  # type: ignore[override]  # records each name asked
        self.asked.add(key)
        return ""

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _variables_the_code_reads() -> set[str]:
    env = _RecordingEnv()
    Settings.from_env(env)
    return env.asked


def _terraform() -> tuple[dict[str, dict], set[str], set[str]]:
    """(functions and their flags, plain variables, secret variables only store users get)."""
    module = hcl2.load((REPO / "terraform" / "modules" / "functions" / "main.tf").open())
    functions = module["locals"][0]["functions"]
    [function] = [body['"fn"'] for block in module["resource"] for kind, body in block.items()
                  if kind.strip('"') == "google_cloudfunctions2_function"]
    service = function["service_config"][0]
    secrets = {content["key"].strip('"') for dynamic in service["dynamic"]
               for block in dynamic.values() for content in block["content"]}
    return functions, set(service["environment_variables"]), secrets


def test_every_variable_terraform_sets_is_read():
    _, plain, secrets = _terraform()
    unused = (plain | secrets) - _variables_the_code_reads() - READ_BY_LIBRARIES
    assert not unused, f"Terraform sets variables nothing reads: {sorted(unused)}"


def test_no_local_stand_in_is_configured_in_the_cloud():
    _, plain, secrets = _terraform()
    assert not (plain | secrets) & LOCAL_ONLY


def test_every_required_setting_reaches_the_functions_that_need_it():
    functions, plain, secrets = _terraform()
    for name, flags in functions.items():
        requirements = (REPO / "functions" / name / "requirements.in").read_text().split()
        given = plain | (secrets if flags["uses_store"] is True else set())
        if "redis" in requirements:
            assert "REDIS_URL" in given, f"{name} uses Redis but Terraform gives it no REDIS_URL"
        if "google-cloud-kms" in requirements:
            assert "LEASE_ROOT_KMS_KEY" in given, name
    assert {"SWEEP_AUDIENCE", "SCHEDULER_SERVICE_ACCOUNT", "GOOGLE_CLOUD_PROJECT"} <= plain


def test_every_variable_the_code_reads_is_either_configured_or_has_a_default():
    """A variable Terraform does not set must be one whose default is right in the cloud."""
    _, plain, secrets = _terraform()
    defaults_are_right = {"AUTH_CLOCK_SKEW_S", "LEASE_TOKEN_ISSUER", "DELEGATION_TTL_S", "DEFAULT_LEASE_TTL_S",
                          "DEFAULT_HEARTBEAT_INTERVAL_S", "LICENSE_CACHE_TTL_S", "MAX_BODY_BYTES", "JWKS_MAX_AGE_S",
                          "RATE_LIMIT_PUBLIC_IP", "REDIS_TIMEOUT_S", "FIRESTORE_TIMEOUT_S"}
    unaccounted = _variables_the_code_reads() - plain - secrets - LOCAL_ONLY - defaults_are_right
    assert not unaccounted, f"read by the code, neither configured nor known to default well: {sorted(unaccounted)}"
