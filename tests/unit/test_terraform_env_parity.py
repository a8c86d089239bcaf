"""What each function reads from its environment and what Terraform gives it agree, both ways.

The code's side is read from Settings.from_env itself (a recording environment), and what
a function's bundle needs from its requirements.in; Terraform's side from
terraform/modules/functions/main.tf: plain environment variables only (`local.environment`
for every function, `local.redis_environment` for the uses_redis ones, `local.mail_environment`
for the sends_mail ones), and the Secret Manager accessor grants that let a function read
the secrets those variables name (Redis's AUTH string and CA; the SMTP relay's password).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import hcl2

from shared.config import Settings

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform" / "modules"
# Read by a library rather than by Settings: gRPC's own log level; functions-framework's
# gunicorn threads (tests/unit/test_terraform_companions.py checks it reads it).
READ_BY_LIBRARIES = {"GRPC_VERBOSITY", "THREADS"}
# Local stand-ins and test overrides: never set in the cloud.
LOCAL_ONLY = {"FIREBASE_AUTH_EMULATOR_HOST", "KMS_ENDPOINT", "ID_TOKEN_CERTS_URL", "OIDC_CERTS_URL",
              "ADMIN_CHECK_ACCOUNTS", "SECRET_MANAGER_ENDPOINT", "SMTP_CA_FILE"}
# What a function that holds seats in Memorystore needs: where it is (no credentials in the
# URL) and the names of the secrets holding its AUTH string and server CA.
REDIS_VARIABLES = {"REDIS_URL", "REDIS_AUTH_SECRET", "REDIS_CA_SECRET"}
# What a function that sends e-mail notifications needs: the relay, its account and the
# name of the secret holding its password, and the sender.
MAIL_VARIABLES = {"SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS", "SMTP_USERNAME", "SMTP_PASSWORD_SECRET", "MAIL_FROM"}
# The functions that send mail: admin (an administrator's test event) and notify (deliveries).
MAIL_SENDERS = {"admin", "notify"}
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
OWN_ACCOUNT = "serviceAccount:${google_service_account.function[each.key].email}"
# merge(local.environment, <the Redis variables, only where a flag is true>, <the mail variables, likewise>)
ENVIRONMENT = re.compile(r"\$\{merge\(local\.environment, \{for (\w+), (\w+) in local\.redis_environment : "
                         r"\1 => \2 if each\.value\.(\w+)\}, \{for (\w+), (\w+) in local\.mail_environment : "
                         r"\4 => \5 if each\.value\.(\w+)\}\)\}")
# { for name, fn in local.functions : name => fn if fn.<flag> }
SELECTION = re.compile(r"\$\{\{for (\w+), (\w+) in local\.functions : \1 => \2 if \2\.(\w+)\}\}")


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


def _unquote(value: object) -> object:
    return value.strip('"') if isinstance(value, str) else value


def _load(path: Path) -> dict:
    with path.open() as handle:
        return hcl2.load(handle)


def _resources(module: dict, kind: str) -> dict[str, dict]:
    return {name.strip('"'): body for block in module.get("resource", []) for k, bodies in block.items()
            if k.strip('"') == kind for name, body in bodies.items()}


@dataclass(frozen=True)
class _Functions:
    module: dict
    locals: dict
    flags: dict[str, dict]
    everywhere: dict[str, str]
    redis_only: dict[str, str]
    redis_flag: str
    mail_only: dict[str, str]
    mail_flag: str

    def given(self, name: str) -> set[str]:
        """The environment variables Terraform sets on function `name`."""
        return (set(self.everywhere) | (set(self.redis_only) if self.flags[name][self.redis_flag] is True else set())
                | (set(self.mail_only) if self.flags[name][self.mail_flag] is True else set()))

    def selected_by(self, for_each: str) -> set[str]:
        """The functions a for_each over them (directly or through a local) keeps."""
        if for_each == "${local.functions}":
            return set(self.flags)
        local = re.fullmatch(r"\$\{local\.(\w+)\}", for_each)
        expression = self.locals[local.group(1)] if local else for_each
        selection = SELECTION.fullmatch(expression)
        assert selection, f"unexpected for_each: {expression}"
        return {name for name, flags in self.flags.items() if flags[selection.group(3)] is True}

    def set_anywhere(self) -> set[str]:
        return set(self.everywhere) | set(self.redis_only) | set(self.mail_only)


@cache
def _functions() -> _Functions:
    module = _load(TERRAFORM / "functions" / "main.tf")
    local_values = {key: value for block in module["locals"] for key, value in block.items()}
    function = _resources(module, "google_cloudfunctions2_function")["fn"]
    [service] = function["service_config"]
    assert "secret_environment_variables" not in service and "dynamic" not in service, \
        "the functions read their secrets themselves (REDIS_AUTH_SECRET, REDIS_CA_SECRET): no secret env vars"
    environment = ENVIRONMENT.fullmatch(service["environment_variables"])
    assert environment, f"unexpected environment_variables: {service['environment_variables']}"
    return _Functions(module, local_values, local_values["functions"], local_values["environment"],
                      local_values["redis_environment"], environment.group(3), local_values["mail_environment"],
                      environment.group(6))


def _requirements(name: str) -> list[str]:
    return (REPO / "functions" / name / "requirements.in").read_text().split()


def test_every_variable_terraform_sets_is_read():
    unused = _functions().set_anywhere() - _variables_the_code_reads() - READ_BY_LIBRARIES
    assert not unused, f"Terraform sets variables nothing reads: {sorted(unused)}"


def test_no_local_stand_in_is_configured_in_the_cloud():
    assert not _functions().set_anywhere() & LOCAL_ONLY


def test_every_required_setting_reaches_the_functions_that_need_it():
    functions = _functions()
    assert set(functions.redis_only) == REDIS_VARIABLES | {"REDIS_WAIT_REPLICAS", "REDIS_TLS_CHECK_HOSTNAME"}
    assert not set(functions.everywhere) & set(functions.redis_only)
    assert set(functions.mail_only) == MAIL_VARIABLES
    assert not (set(functions.everywhere) | set(functions.redis_only)) & set(functions.mail_only)
    for name in functions.flags:
        given = functions.given(name)
        redis_given = sorted(given & REDIS_VARIABLES)
        if "redis" in _requirements(name):
            assert REDIS_VARIABLES <= given, f"{name} uses Redis but Terraform gives it {redis_given}"
        else:
            assert not redis_given, f"{name} does not use Redis but gets {redis_given}"
        if "google-cloud-kms" in _requirements(name):
            assert "LEASE_ROOT_KMS_KEY" in given, name
        mail_given = sorted(given & MAIL_VARIABLES)
        if name in MAIL_SENDERS:
            assert MAIL_VARIABLES <= given, f"{name} sends e-mail but Terraform gives it {mail_given}"
        else:
            assert not mail_given, f"{name} sends no e-mail but gets {mail_given}"
    assert {"SWEEP_AUDIENCE", "SCHEDULER_SERVICE_ACCOUNT", "GOOGLE_CLOUD_PROJECT"} <= set(functions.everywhere)


def test_exactly_the_redis_users_may_read_the_redis_secrets_with_their_own_accounts():
    functions = _functions()
    secrets = {functions.redis_only["REDIS_AUTH_SECRET"], functions.redis_only["REDIS_CA_SECRET"]}
    assert len(secrets) == 2 and all(re.fullmatch(r"\$\{var\.\w+\}", secret) for secret in secrets)
    smtp_password = functions.mail_only["SMTP_PASSWORD_SECRET"]  # made here; the operator adds its version
    assert smtp_password == "${google_secret_manager_secret.smtp_password.id}"
    readers: dict[str, set[str]] = {secret: set() for secret in secrets | {smtp_password}}
    grants = _resources(functions.module, "google_secret_manager_secret_iam_member")
    # Besides the functions, only the deployer, whose functions-only apply refreshes the
    # secrets' versions (reading them), on exactly these two secrets.
    deployer = grants.pop("deployer_refreshes_redis_secrets")
    assert _unquote(deployer["member"]) == "serviceAccount:${var.deployer_email}"
    assert _unquote(deployer["role"]) == SECRET_ACCESSOR and deployer["secret_id"] == "${each.value}"
    assert set(re.findall(r"var\.\w+", str(deployer["for_each"]))) == {s[2:-1] for s in secrets}
    for resource, grant in grants.items():
        assert grant["secret_id"] in readers, f"{resource} grants on a secret no function is told of"
        assert _unquote(grant["role"]) == SECRET_ACCESSOR and _unquote(grant["member"]) == OWN_ACCOUNT, resource
        readers[grant["secret_id"]] |= functions.selected_by(grant["for_each"])
    for name in functions.flags:
        uses_redis = "redis" in _requirements(name)
        for secret, names in readers.items():
            reads = name in MAIL_SENDERS if secret == smtp_password else uses_redis
            wrong = "missing" if reads else "not needed"
            assert (name in names) == reads, f"{name}: accessor on {secret} {wrong}"
    # Nor does any other grant of the module give a secret away (project-wide roles included),
    # but those conditioned on the webhook signing secrets' names (notify reads them).
    webhook_readers = [body for body in _resources(functions.module, "google_project_iam_member").values()
                       if "roles/secretmanager." in str(body["role"])]
    for body in webhook_readers:
        [condition] = body["condition"]
        assert _unquote(condition["expression"]) == 'resource.name.startsWith(\\"${local.webhook_secret_prefix}\\")'
    everything = " ".join(str(body) for block in functions.module["resource"] for body in block.values())
    assert everything.count("roles/secretmanager.") == len(grants) + 1 + len(webhook_readers)  # + the deployer's

    depends_on = _resources(functions.module, "google_cloudfunctions2_function")["fn"]["depends_on"]
    for resource in grants:
        assert f"${{google_secret_manager_secret_iam_member.{resource}}}" in depends_on, \
            f"a function could start before it may read its secrets ({resource})"


def test_the_redis_variables_come_from_the_instance_and_the_secrets_versions():
    """REDIS_URL carries no credentials; the secrets' names are read through their versions,
    so no function is created before both secrets hold a version."""
    functions = _functions()
    variables = {key: value.removeprefix("${var.").removesuffix("}") for key, value in functions.redis_only.items()}
    [stack] = [block['"functions"'] for block in _load(TERRAFORM / "license_server" / "main.tf")["module"]
               if '"functions"' in block]
    outputs = {name.strip('"'): body["value"] for block in _load(TERRAFORM / "redis" / "outputs.tf")["output"]
               for name, body in block.items() if name != "__comments__"}
    redis = _load(TERRAFORM / "redis" / "main.tf")
    versions = _resources(redis, "google_secret_manager_secret_version")
    secrets = _resources(redis, "google_secret_manager_secret")

    def output_behind(variable: str) -> str:
        module_output = re.fullmatch(r"\$\{module\.redis\.(\w+)\}", stack[variables[variable]])
        assert module_output, f"{variable} is not wired from modules/redis"
        return outputs[module_output.group(1)]

    url = output_behind("REDIS_URL")
    assert _unquote(url) == "rediss://${google_redis_instance.seats.host}:${google_redis_instance.seats.port}/0"
    holds = {"REDIS_AUTH_SECRET": "${google_redis_instance.seats.auth_string}",
             "REDIS_CA_SECRET": '${join("\\n", google_redis_instance.seats.server_ca_certs[*].cert)}'}
    for variable, data in holds.items():
        version = re.fullmatch(r"\$\{google_secret_manager_secret_version\.(\w+)\.secret\}", output_behind(variable))
        assert version, f"{variable} must be read through the secret's version (so functions wait for it)"
        body = versions[version.group(1)]
        assert body["secret_data"] == data, variable
        secret = re.fullmatch(r"\$\{google_secret_manager_secret\.(\w+)\.id\}", body["secret"])
        assert secret and secret.group(1) in secrets, variable  # id: projects/<project>/secrets/<secret_id>
    for name, value in outputs.items():
        assert "auth_string" not in value and "secret_data" not in value, f"output {name} shows a secret"


def test_every_variable_the_code_reads_is_either_configured_or_has_a_default():
    """A variable Terraform does not set must be one whose default is right in the cloud."""
    defaults_are_right = {"AUTH_CLOCK_SKEW_S", "LEASE_TOKEN_ISSUER", "DELEGATION_TTL_S", "DEFAULT_LEASE_TTL_S",
                          "DEFAULT_HEARTBEAT_INTERVAL_S", "LICENSE_CACHE_TTL_S", "MAX_BODY_BYTES", "JWKS_MAX_AGE_S",
                          "RATE_LIMIT_PUBLIC_IP", "REDIS_TIMEOUT_S", "FIRESTORE_TIMEOUT_S",
                          "REDIS_WAIT_TIMEOUT_MS", "REDIS_WAIT_FALLBACK", "USAGE_CLOSE_AFTER_S",
                          "USAGE_CHECKPOINT_SHARDS", "WEBHOOK_ALLOW_PRIVATE", "NOTIFY_PULL_WAIT_S",
                          "ANOMALY_CHECK_INTERVAL_S", "CONSOLE_AUTH_DOMAIN"}
    unaccounted = _variables_the_code_reads() - _functions().set_anywhere() - LOCAL_ONLY - defaults_are_right
    assert not unaccounted, f"read by the code, neither configured nor known to default well: {sorted(unaccounted)}"


def test_e_mail_leaves_over_starttls_only_with_its_password_from_secret_manager():
    """Deployed, SMTP_STARTTLS is always 1 (Settings refuses 0 outside a demo-* project),
    and the password is a secret's name, never a value in the environment."""
    import pytest

    from shared.config import ConfigError

    mail = _functions().mail_only
    assert _unquote(mail["SMTP_STARTTLS"]) == "1"
    assert not any("password" in key.lower() and not key.endswith("_SECRET") for key in mail)
    relay = {"SMTP_HOST": "smtp.example.com", "MAIL_FROM": "licenses@example.com"}
    with pytest.raises(ConfigError, match="SMTP_STARTTLS=0"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "acme-prod", **relay, "SMTP_STARTTLS": "0"})
    with pytest.raises(ConfigError, match="MAIL_FROM"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "acme-prod", "SMTP_HOST": "smtp.example.com"})
    with pytest.raises(ConfigError, match="SMTP_PASSWORD_SECRET"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "acme-prod", **relay, "SMTP_USERNAME": "licenses"})
    settings = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "acme-prod", **relay})
    assert (settings.smtp_port, settings.smtp_starttls) == (587, True)
