"""The Secret Manager reader through the real google-cloud-secret-manager client and the stand-in."""

from __future__ import annotations

import google_crc32c
import pytest
from google.api_core import exceptions as google_exceptions

from devstack.secret_manager_standin import SecretManagerStandIn
from shared.google_secrets import SecretReader, SecretUnreadable, secret_manager_client, version_name

PROJECT = "projects/demo-secrets"


@pytest.fixture(scope="module")
def standin():
    with SecretManagerStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def client(standin):
    return secret_manager_client(standin.address)


def test_a_secret_name_means_its_latest_version():
    assert version_name(f"{PROJECT}/secrets/s") == f"{PROJECT}/secrets/s/versions/latest"
    assert version_name(f"{PROJECT}/secrets/s/versions/3") == f"{PROJECT}/secrets/s/versions/3"
    with pytest.raises(ValueError):
        version_name("redis-auth")  # a bare id would silently pick a project: refused


def test_latest_follows_the_newest_version_and_numbers_stay_readable(client):
    secret = client.create_secret(request={"parent": PROJECT, "secret_id": "rotating",
                                           "secret": {"replication": {"automatic": {}}}})
    for value in (b"first", b"second"):
        client.add_secret_version(request={"parent": secret.name, "payload": {
            "data": value, "data_crc32c": google_crc32c.value(value)}})
    reader = SecretReader(client)
    assert reader.text(secret.name) == "second"
    assert reader.text(f"{secret.name}/versions/1") == "first"
    listed = [v.name.rsplit("/", 1)[1] for v in client.list_secret_versions(request={"parent": secret.name})]
    assert listed == ["2", "1"]


def test_a_disabled_latest_version_is_unreadable_until_enabled_again(client, standin):
    name = standin.put("demo-secrets", "disabled", "value")
    client.disable_secret_version(request={"name": f"{name}/versions/1"})
    with pytest.raises(SecretUnreadable, match="FailedPrecondition"):
        SecretReader(client).text(name)
    client.enable_secret_version(request={"name": f"{name}/versions/1"})
    assert SecretReader(client).text(name) == "value"


@pytest.mark.parametrize("name", [f"{PROJECT}/secrets/never-created", f"{PROJECT}/secrets/rotating/versions/9"])
def test_a_missing_secret_or_version_is_unreadable_and_named_without_a_value(client, name):
    with pytest.raises(SecretUnreadable, match="NotFound") as raised:
        SecretReader(client).text(name)
    assert name.split("/versions/")[0] in str(raised.value)


def test_a_payload_corrupted_on_the_way_in_is_refused(client, standin):
    name = standin.put("demo-secrets", "checked", "x")
    with pytest.raises(google_exceptions.InvalidArgument):
        client.add_secret_version(request={"parent": name, "payload": {"data": b"y", "data_crc32c": 1}})


def test_an_unreachable_secret_manager_is_unreadable(standin):
    from devstack.processes import free_port

    reader = SecretReader(secret_manager_client(f"127.0.0.1:{free_port()}"), timeout_s=1)
    with pytest.raises(SecretUnreadable):
        reader.text(f"{PROJECT}/secrets/any")
