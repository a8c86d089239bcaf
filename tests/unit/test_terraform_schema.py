"""Every resource, data and provider block in terraform/ fits the schema of the pinned provider.

Argument and nested block names (recursively, through `dynamic` blocks' content), required
arguments and blocks, once-only blocks, and the literal values of the arguments in
tests/unit/terraform/enums.toml. The schemas are the cdktf packages' (package.json) generated
from the very provider versions that terraform/ pins: tests/unit/terraform_schema.py says how
they are read. The .tf files are read as they are when the test runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from terraform_schema import (
    REPO,
    SCHEMA_PACKAGES,
    admits,
    assembly,
    check_module,
    enums,
    possible_values,
    required_providers,
    schemas,
)

TERRAFORM = REPO / "terraform"
MODULES = sorted({path.parent for path in TERRAFORM.rglob("*.tf") if ".terraform" not in path.parts})


def _module_files(directory: Path) -> dict[str, str]:
    return {str(path.relative_to(REPO)): path.read_text() for path in sorted(directory.glob("*.tf"))}


def _errors(text: str) -> list[str]:
    return check_module({"inline.tf": text})


# --- the tree ------------------------------------------------------------------------------


def test_the_schema_packages_describe_the_pinned_provider_versions():
    problems, pinned = [], set()
    for path in sorted(TERRAFORM.rglob("versions.tf")):
        for name, (source, constraint) in required_providers(path.read_text()).items():
            if name not in SCHEMA_PACKAGES:
                continue
            described = assembly(SCHEMA_PACKAGES[name])
            pinned.add(name)
            if source != described.provider_source or not admits(constraint, described.provider_version):
                problems.append(
                    f'{path.relative_to(REPO)}: {name} = {{ source = "{source}", version = "{constraint}" }}, '
                    f"but package.json's {described.package} describes {described.provider_source} "
                    f"{described.provider_version}: put in package.json the {SCHEMA_PACKAGES[name]} version "
                    f"generated from the pinned one (`npm view {SCHEMA_PACKAGES[name]}@<v> cdktf.provider.version`),"
                    " with the same cdktf peer range as the other @cdktf packages")
    assert not problems, "\n".join(problems)
    assert "google" in pinned


@pytest.mark.parametrize("directory", MODULES, ids=lambda d: str(d.relative_to(REPO)))
def test_the_blocks_fit_the_provider_schemas(directory):
    errors = check_module(_module_files(directory))
    assert not errors, "\n".join(["blocks that the pinned providers' schemas reject:", *errors])


@pytest.mark.parametrize("package", sorted(SCHEMA_PACKAGES.values()))
def test_the_names_read_from_the_docs_links_are_the_ones_the_package_writes_to_terraform(package):
    disagreements = assembly(package).name_disagreements()
    assert not disagreements, "\n".join(disagreements[:20])


def test_the_enum_table_names_real_arguments_and_agrees_with_the_provider_docs():
    problems = []
    for type_name, arguments in enums().items():
        schema = schemas().lookup("resource", type_name)
        if schema is None:
            problems.append(f"enums.toml: [{type_name}]: no such resource type")
            continue
        for path, values in arguments.items():
            block, argument = schema, None
            for step in path.split("."):
                argument = block.fields.get(step) if block else None
                block = argument.nested if argument else None
            if argument is None or argument.nested is not None:
                problems.append(f"enums.toml: [{type_name}] {path}: no such argument in the schema")
                continue
            documented = possible_values(argument.docs)
            if documented is not None and documented != set(values):
                problems.append(f"enums.toml: [{type_name}] {path} = {sorted(values)}, "
                                f"the provider's docs: {sorted(documented)}")
            if len(set(values)) != len(values):
                problems.append(f"enums.toml: [{type_name}] {path}: a value is listed twice")
    assert not problems, "\n".join(problems)


# --- the checker on inline HCL -------------------------------------------------------------

REDIS = """
resource "google_redis_instance" "seats" {
  name           = "seats"
  memory_size_gb = 1
  tier           = "STANDARD_HA"
  %s
}
"""


def test_a_misspelled_argument_is_named_with_file_resource_and_suggestion():
    [error] = _errors(REDIS % 'conect_mode = "DIRECT_PEERING"')
    assert error == ('inline.tf:2: google_redis_instance.seats: unknown argument "conect_mode" '
                     '(did you mean "connect_mode"?)')


def test_a_missing_required_argument_is_named():
    errors = _errors('resource "google_redis_instance" "seats" {\n  name = "seats"\n}\n')
    assert errors == ['inline.tf:1: google_redis_instance.seats: missing required argument "memory_size_gb"']


def test_an_unknown_nested_block_is_named_with_its_path():
    [error] = _errors(REDIS % """
  maintenance_policy {
    weekly_maintenance_window {
      day = "MONDAY"
      start_time {
        hours = 3
      }
      end_time {
        hours = 4
      }
    }
  }""")
    assert error == ('inline.tf:2: google_redis_instance.seats, in maintenance_policy.weekly_maintenance_window: '
                     'unknown block "end_time"')


def test_a_missing_required_nested_argument_and_block_are_named():
    errors = _errors(REDIS % "maintenance_policy {\n weekly_maintenance_window {}\n }")
    where = "inline.tf:2: google_redis_instance.seats, in maintenance_policy.weekly_maintenance_window"
    assert sorted(errors) == [f'{where}: missing required argument "day"',
                              f'{where}: missing required block "start_time"']


def test_an_argument_written_as_a_block_and_a_once_only_block_twice():
    errors = _errors(REDIS % 'labels {\n a = "b"\n }\n persistence_config {}\n persistence_config {}')
    assert sorted(errors) == [
        'inline.tf:2: google_redis_instance.seats: "labels" is an argument, not a block (write labels = ...)',
        'inline.tf:2: google_redis_instance.seats: block "persistence_config" may appear once, found 2',
    ]


def test_a_literal_outside_the_enum_table_and_a_variable_default_outside_it():
    errors = _errors((REDIS % 'connect_mode = "PRIVATE_SERVICE"\n transit_encryption_mode = var.tls')
                     + 'variable "tls" {\n  type    = string\n  default = "SERVER_AUTH"\n}\n')
    assert sorted(errors) == [
        "inline.tf:2: google_redis_instance.seats: \"connect_mode\" = \"PRIVATE_SERVICE\" is not one of "
        "['DIRECT_PEERING', 'PRIVATE_SERVICE_ACCESS'] (did you mean \"PRIVATE_SERVICE_ACCESS\"?)",
        "inline.tf:2: google_redis_instance.seats: \"transit_encryption_mode\" = \"SERVER_AUTH\" (the default of "
        "var.tls) is not one of ['DISABLED', 'SERVER_AUTHENTICATION']",
    ]


def test_enum_values_in_nested_blocks_are_checked_and_expressions_are_not():
    errors = _errors("""
resource "google_cloudfunctions2_function" "fn" {
  name     = "fn"
  location = "europe-west1"
  service_config {
    ingress_settings              = "ALLOW_INTERNAL"
    vpc_connector_egress_settings = var.egress
  }
}
resource "google_monitoring_alert_policy" "p" {
  display_name = "p"
  combiner     = "OR"
  conditions {
    display_name = "c"
    condition_threshold {
      comparison = "GREATER_THAN"
      duration   = "60s"
    }
  }
}
""")
    assert sorted(errors) == [
        "inline.tf:10: google_monitoring_alert_policy.p, in conditions.condition_threshold: \"comparison\" = "
        "\"GREATER_THAN\" is not one of ['COMPARISON_EQ', 'COMPARISON_GE', 'COMPARISON_GT', 'COMPARISON_LE', "
        "'COMPARISON_LT', 'COMPARISON_NE']",
        "inline.tf:2: google_cloudfunctions2_function.fn, in service_config: \"ingress_settings\" = "
        "\"ALLOW_INTERNAL\" is not one of ['ALLOW_ALL', 'ALLOW_INTERNAL_AND_GCLB', 'ALLOW_INTERNAL_ONLY'] "
        "(did you mean \"ALLOW_INTERNAL_ONLY\"?)",
    ]


INDEX = """
resource "google_firestore_index" "query" {
  for_each   = local.indexes
  collection = each.value.collection
  dynamic "%s" {
    for_each = each.value.fields
    iterator = field
    content {
      field_path = field.value
      %s
    }
  }
}
"""


def test_a_dynamic_block_is_checked_as_the_block_it_makes():
    assert _errors(INDEX % ("fields", 'order = "ASCENDING"')) == []
    assert _errors(INDEX % ("fields", 'ordr = "ASCENDING"')) == [
        'inline.tf:2: google_firestore_index.query, in fields: unknown argument "ordr" (did you mean "order"?)']
    assert _errors(INDEX % ("fields", 'order = "UP"')) == [
        "inline.tf:2: google_firestore_index.query, in fields: \"order\" = \"UP\" is not one of "
        "['ASCENDING', 'DESCENDING']"]
    assert _errors(INDEX % ("field", "")) == [
        'inline.tf:2: google_firestore_index.query: dynamic "field": unknown block "field" (did you mean "fields"?)',
        'inline.tf:2: google_firestore_index.query: missing required block "fields"',
    ]
    assert _errors(INDEX.replace("for_each = each.value.fields", "for_eech = each.value.fields")
                   % ("fields", "")) == [
        'inline.tf:2: google_firestore_index.query: dynamic "fields": unknown argument "for_eech" (a dynamic '
        'block takes for_each, iterator, labels and one content block)',
        'inline.tf:2: google_firestore_index.query: dynamic "fields": missing required argument "for_each"',
    ]


def test_meta_arguments_are_accepted_and_lifecycle_is_checked():
    text = """
resource "google_kms_crypto_key" "key" {
  count    = 1
  provider = google
  name     = "k"
  key_ring = "r"
  purpose  = "ASYMMETRIC_SIGN"
  version_template {
    algorithm        = "EC_SIGN_P256_SHA256"
    protection_level = "HSM"
  }
  depends_on = [terraform_data.gate]
  lifecycle {
    prevent_destroy = true
    ignore_changes  = [labels]
    precondition {
      condition     = true
      error_message = "never"
    }
  }
  provisioner "local-exec" {
    command = "true"
  }
}
resource "terraform_data" "gate" {
  for_each = toset(["a"])
  input    = each.key
}
resource "time_sleep" "wait" {
  create_duration = "60s"
  triggers        = { a = "b" }
}
data "google_project" "this" {
  project_id = "p"
  lifecycle {
    postcondition {
      condition     = true
      error_message = "never"
    }
  }
}
"""
    assert _errors(text) == []
    assert _errors(text.replace("prevent_destroy", "prevent_destroyy")) == [
        'inline.tf:2: google_kms_crypto_key.key, in lifecycle: unknown argument "prevent_destroyy" '
        '(did you mean "prevent_destroy"?)']
    assert _errors(text.replace('"EC_SIGN_P256_SHA256"', '"EC_SIGN_P256"')) == [
        "inline.tf:2: google_kms_crypto_key.key, in version_template: \"algorithm\" = \"EC_SIGN_P256\" is not "
        "one of " + str(sorted(enums()["google_kms_crypto_key"]["version_template.algorithm"]))
        + ' (did you mean "EC_SIGN_P256_SHA256"?)']


def test_time_sleep_terraform_data_and_unknown_types():
    errors = _errors("""
resource "time_sleep" "wait" {
  create_durration = "60s"
}
resource "terraform_data" "gate" {
  inputs = 1
}
resource "google_redis_instanse" "x" {
}
resource "random_id" "x" {
}
data "google_projects" "this" {
  filter = "x"
}
""")
    assert errors == [
        'inline.tf:2: time_sleep.wait: unknown argument "create_durration" (did you mean "create_duration"?)',
        'inline.tf:5: terraform_data.gate: unknown argument "inputs" (did you mean "input"?)',
        "inline.tf:8: google_redis_instanse.x: unknown resource type google_redis_instanse: no resource of that "
        'name in @cdktf/provider-google@14.11.0 (did you mean "google_redis_instance"?)',
        'inline.tf:10: random_id.x: unknown resource type random_id: no schema for provider "random": add its '
        "@cdktf/provider-* package to package.json (and to SCHEMA_PACKAGES in tests/unit/terraform_schema.py), "
        "or a hand-kept schema to tests/unit/terraform/builtin_resources.toml",
    ]


def test_renamed_properties_keep_their_terraform_names():
    """cdktf renames some properties (geth_details -> fetchhDetails, build -> buildAttribute)."""
    nodes = schemas().lookup("resource", "google_blockchain_node_engine_blockchain_nodes")
    assert nodes is not None
    ethereum = nodes.fields["ethereum_details"].nested
    assert ethereum is not None and "geth_details" in ethereum.fields and "fetchh_details" not in ethereum.fields
    redis = schemas().lookup("resource", "google_redis_instance")
    assert redis is not None and redis.fields["maintenance_policy"].nested is not None
    assert redis.fields["memory_size_gb"].required and not redis.fields["connect_mode"].required


@pytest.mark.parametrize(("constraint", "version", "expected"), [
    ("= 6.12.0", "6.12.0", True), ("6.12.0", "6.12.1", False), (">= 0.12, < 0.13", "0.12.1", True),
    ("~> 0.12", "0.13.1", True), ("~> 0.12.0", "0.13.1", False), ("~> 0.12.0", "0.12.9", True),
    ("!= 0.12.1", "0.12.1", False), ("~> 1", "1.9.0", True), ("~> 1", "2.0.0", False),
])
def test_version_constraints(constraint, version, expected):
    assert admits(constraint, version) is expected
