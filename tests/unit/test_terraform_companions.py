"""Companion rules: what one Terraform resource needs from another to apply (issue 12).

No terraform binary or cloud is reachable here, so these are the rules a `terraform
plan` cannot see and a first `apply` would trip on, checked over the files:
    - every resource type's API is enabled, and every module waits for the enablement;
    - Memorystore with PRIVATE_SERVICE_ACCESS has its allocated range and networking connection;
    - functions that read the Redis secrets are created after both secrets have a version;
    - the scheduler's URI and audience agree with each other, with what the sweep expects
      and with what an internal-only target accepts (its run.app URL);
    - every function is built by a dedicated build service account;
    - gunicorn's threads (THREADS) equal the requests Cloud Run sends an instance at once.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.unit.terraform_tree import MODULES, expression, locals_of, module_calls, module_resources, resources, unquote

STACK = MODULES / "license_server" / "main.tf"

# The API each resource type is served by (Google's "APIs and services" each resource's
# provider documentation names). Data sources read through the same APIs.
API_OF_TYPE = {
    "google_project_service": "serviceusage.googleapis.com",
    "google_project": "cloudresourcemanager.googleapis.com",
    "google_project_iam_member": "cloudresourcemanager.googleapis.com",
    "google_project_iam_custom_role": "iam.googleapis.com",
    "google_service_account": "iam.googleapis.com",
    "google_service_account_iam_member": "iam.googleapis.com",
    "google_compute_network": "compute.googleapis.com",
    "google_compute_subnetwork": "compute.googleapis.com",
    "google_compute_firewall": "compute.googleapis.com",
    "google_compute_global_address": "compute.googleapis.com",
    "google_service_networking_connection": "servicenetworking.googleapis.com",
    "google_vpc_access_connector": "vpcaccess.googleapis.com",
    "google_redis_instance": "redis.googleapis.com",
    "google_secret_manager_secret": "secretmanager.googleapis.com",
    "google_secret_manager_secret_version": "secretmanager.googleapis.com",
    "google_secret_manager_secret_iam_member": "secretmanager.googleapis.com",
    "google_firestore_database": "firestore.googleapis.com",
    "google_firestore_index": "firestore.googleapis.com",
    "google_firestore_field": "firestore.googleapis.com",
    "google_pubsub_topic": "pubsub.googleapis.com",
    "google_pubsub_topic_iam_member": "pubsub.googleapis.com",
    "google_pubsub_subscription": "pubsub.googleapis.com",
    "google_pubsub_subscription_iam_member": "pubsub.googleapis.com",
    "google_firebaserules_ruleset": "firebaserules.googleapis.com",
    "google_firebaserules_release": "firebaserules.googleapis.com",
    "google_kms_key_ring": "cloudkms.googleapis.com",
    "google_kms_crypto_key": "cloudkms.googleapis.com",
    "google_kms_crypto_key_iam_member": "cloudkms.googleapis.com",
    "google_storage_bucket": "storage.googleapis.com",
    "google_storage_bucket_iam_member": "storage.googleapis.com",
    "google_cloudbuild_trigger": "cloudbuild.googleapis.com",
    "google_cloudfunctions2_function": "cloudfunctions.googleapis.com",
    "google_cloud_run_service_iam_member": "run.googleapis.com",
    "google_cloud_scheduler_job": "cloudscheduler.googleapis.com",
    "google_logging_metric": "logging.googleapis.com",
    "google_monitoring_notification_channel": "monitoring.googleapis.com",
    "google_monitoring_alert_policy": "monitoring.googleapis.com",
    "google_monitoring_uptime_check_config": "monitoring.googleapis.com",
    "google_monitoring_dashboard": "monitoring.googleapis.com",
}
# What a gen2 function needs besides its own API: it is a Cloud Run service, built by
# Cloud Build into Artifact Registry. Firebase Auth (identitytoolkit) is what the code calls.
ALSO_NEEDED = {"run.googleapis.com", "cloudbuild.googleapis.com", "artifactregistry.googleapis.com",
               "identitytoolkit.googleapis.com"}
NO_API = {"time_sleep", "terraform_data"}  # providers that call no Google API


def _enabled_apis() -> set[str]:
    [apis] = [r for r in resources(MODULES / "license_server") if r.type == "google_project_service"]
    return set(re.findall(r'"([a-z.]+\.googleapis\.com)"', str(apis.body["for_each"])))


def test_every_resource_types_api_is_enabled():
    enabled = _enabled_apis()
    for resource in resources():
        if resource.type in NO_API:
            continue
        assert resource.type in API_OF_TYPE, f"{resource.address}: which API serves {resource.type}? (add it above)"
        assert API_OF_TYPE[resource.type] in enabled, f"{resource.address} needs {API_OF_TYPE[resource.type]} enabled"
    assert ALSO_NEEDED <= enabled


def test_every_module_waits_for_the_apis():
    for name, call in module_calls(STACK).items():
        assert "${google_project_service.apis}" in call.get("depends_on", []), f"module {name} must depend on the APIs"


def test_private_service_access_comes_with_its_range_and_connection():
    everything = resources()
    types = {r.type for r in everything}
    for redis in (r for r in everything if r.type == "google_redis_instance"):
        mode = unquote(redis.body.get("connect_mode", '"DIRECT_PEERING"'))
        assert mode in {"DIRECT_PEERING", "PRIVATE_SERVICE_ACCESS"}, f"{redis.address}: connect_mode {mode}"
        if mode == "PRIVATE_SERVICE_ACCESS":
            assert {"google_compute_global_address", "google_service_networking_connection"} <= types, (
                f"{redis.address}: PRIVATE_SERVICE_ACCESS needs an allocated range and a networking connection")
            assert "servicenetworking.googleapis.com" in _enabled_apis()


def test_functions_reading_the_redis_secrets_wait_for_their_versions():
    functions = module_resources("functions")
    fn = functions["google_cloudfunctions2_function.fn"].body
    assert "${terraform_data.redis_secret_versions}" in fn["depends_on"]
    gate = expression(functions["terraform_data.redis_secret_versions"].body["input"])
    assert "var.redis_auth_secret_version" in str(gate) and "var.redis_ca_secret_version" in str(gate)
    wiring = module_calls(STACK)["functions"]
    assert expression(wiring["redis_auth_secret_version"]) == "module.redis.auth_secret_version"
    assert expression(wiring["redis_ca_secret_version"]) == "module.redis.ca_secret_version"
    versions = module_resources("redis")
    for secret in ("auth", "ca"):
        assert f"google_secret_manager_secret_version.{secret}" in versions


@pytest.mark.parametrize("name", ["sweep", "notify"])
def test_the_scheduler_calls_its_functions_where_an_internal_only_service_accepts_it(name):
    functions = module_resources("functions")
    local = locals_of(MODULES / "functions" / "main.tf")
    job = functions[f"google_cloud_scheduler_job.{name}"].body
    [target] = job["http_target"]
    [oidc] = target["oidc_token"]
    assert expression(target["uri"]) == expression(oidc["audience"]) == f"local.{name}_url"
    # what the function checks (shared/config.py scheduler_audience)
    assert expression(local["environment"][f"{name.upper()}_AUDIENCE"]) == f"local.{name}_url"
    ingress = expression(functions["google_cloudfunctions2_function.fn"].body["service_config"][0]["ingress_settings"])
    assert "ALLOW_INTERNAL_ONLY" in ingress and "each.value.public" in ingress
    assert local["functions"][name]["public"] is False
    # Internal-only: Scheduler is internal traffic on the service's run.app URL only.
    url = unquote(local[f"{name}_url"])
    assert re.fullmatch(rf"https://\$\{{var\.environment\}}-{name}-\$\{{data\.google_project\.this\.number\}}"
                        r"\.\$\{var\.region\}\.run\.app", url), url
    assert "cloudfunctions.net" not in url
    invoker = functions["google_cloud_run_service_iam_member.scheduler_invoker"].body
    assert unquote(invoker["member"]) == "serviceAccount:${google_service_account.scheduler.email}"
    assert invoker["for_each"] == "${{for name, fn in local.functions : name => fn if !fn.public}}"


def test_every_function_is_built_by_its_own_build_account():
    functions = module_resources("functions")
    [build] = functions["google_cloudfunctions2_function.fn"].body["build_config"]
    assert expression(build["service_account"]) == "google_service_account.build.id"
    grants = str(functions["google_project_iam_member.build"].body["for_each"])  # toset([...])
    for role in ("roles/logging.logWriter", "roles/artifactregistry.writer"):
        assert role in grants
    reads = functions["google_storage_bucket_iam_member.build_reads_sources"].body
    assert unquote(reads["role"]) == "roles/storage.objectViewer" and expression(reads["bucket"]) == "var.source_bucket"


def test_gunicorn_runs_one_thread_per_request_cloud_run_sends():
    functions = module_resources("functions")
    local = locals_of(MODULES / "functions" / "main.tf")
    [service] = functions["google_cloudfunctions2_function.fn"].body["service_config"]
    assert expression(service["max_instance_request_concurrency"]) == "var.concurrency"
    assert expression(local["environment"]["THREADS"]) == "tostring(var.concurrency)"


def test_functions_framework_takes_its_thread_count_from_threads(monkeypatch):
    """The variable Terraform sets is the one functions-framework's gunicorn reads."""
    from functions_framework._http.gunicorn import GunicornApplication

    monkeypatch.setitem(os.environ, "THREADS", "16")
    app = GunicornApplication(app=None, host="127.0.0.1", port=0, debug=False)
    assert app.options["threads"] == 16 and app.options["workers"] == 1


@pytest.mark.parametrize("role_holder", ["signer", "public_key_reader"])
def test_kms_grants_use_the_custom_roles_that_include_listing_versions(role_holder):
    functions = module_resources("functions")
    grant = functions[f"google_kms_crypto_key_iam_member.{role_holder}"].body
    role = expression(grant["role"])
    assert role.startswith("google_project_iam_custom_role.") and role.endswith(".name")
    custom = functions[role.removesuffix(".name")].body
    assert "cloudkms.cryptoKeyVersions.list" in [unquote(p) for p in custom["permissions"]]
