"""In-process stand-in for Secret Manager, for the dev stack and tests.

Secret Manager has no emulator, yet the functions read Memorystore's AUTH string and CA
from it at start (shared/google_secrets.py), and re-read them when Redis refuses them.
This module is a real gRPC server speaking ``google.cloud.secretmanager.v1.
SecretManagerService`` to the real ``google-cloud-secret-manager`` client: secrets,
numbered versions, the ``latest`` alias, disabling and destroying versions, CRC32C on
payloads both ways, and the service's error codes (NOT_FOUND, FAILED_PRECONDITION for a
disabled or destroyed version, INVALID_ARGUMENT, ALREADY_EXISTS). Everything lives in
memory and vanishes with the process; there is no IAM (the stack is one user's).
"""

from __future__ import annotations

import datetime
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import google_crc32c
import grpc
from google.cloud import secretmanager_v1 as sm
from google.protobuf import empty_pb2  # type: ignore[import-untyped]

from devstack.grpc_standin import GrpcStandIn, unary

_SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
_State = sm.SecretVersion.State
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")  # the service's rule for secret ids
_VERSION = re.compile(r"^(projects/[^/]+/secrets/[^/]+)/versions/([^/]+)$")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class _Version:
    number: int
    data: bytes
    state: Any = _State.ENABLED
    created: datetime.datetime = field(default_factory=_now)


@dataclass
class _Secret:
    name: str
    created: datetime.datetime = field(default_factory=_now)
    versions: list[_Version] = field(default_factory=list)


class SecretManagerStandIn(GrpcStandIn):
    """A SecretManagerService gRPC server holding secrets in memory."""

    service = _SERVICE

    def __init__(self) -> None:
        super().__init__(workers=4)
        self._lock = threading.Lock()
        self._secrets: dict[str, _Secret] = {}
        self.accesses = 0  # AccessSecretVersion calls answered (tests: a cache is a cache)

    # ---- the stack's side (what Terraform does in the cloud) --------------------------------
    def put(self, project: str, secret_id: str, value: str | bytes) -> str:
        """Create `secret_id` if needed and add `value` as its newest version; its name."""
        name = f"projects/{project}/secrets/{secret_id}"
        data = value.encode() if isinstance(value, str) else value
        with self._lock:
            secret = self._secrets.setdefault(name, _Secret(name))
            secret.versions.append(_Version(len(secret.versions) + 1, data))
        return name

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        return {
            "CreateSecret": unary(self._create_secret, sm.CreateSecretRequest, sm.Secret),
            "GetSecret": unary(self._get_secret, sm.GetSecretRequest, sm.Secret),
            "ListSecrets": unary(self._list_secrets, sm.ListSecretsRequest, sm.ListSecretsResponse),
            "AddSecretVersion": unary(self._add_version, sm.AddSecretVersionRequest, sm.SecretVersion),
            "GetSecretVersion": unary(self._get_version, sm.GetSecretVersionRequest, sm.SecretVersion),
            "ListSecretVersions": unary(self._list_versions, sm.ListSecretVersionsRequest,
                                        sm.ListSecretVersionsResponse),
            "AccessSecretVersion": unary(self._access, sm.AccessSecretVersionRequest,
                                         sm.AccessSecretVersionResponse),
            "EnableSecretVersion": unary(self._enable, sm.EnableSecretVersionRequest, sm.SecretVersion),
            "DisableSecretVersion": unary(self._disable, sm.DisableSecretVersionRequest, sm.SecretVersion),
            "DestroySecretVersion": unary(self._destroy, sm.DestroySecretVersionRequest, sm.SecretVersion),
            # (its answer is a plain protobuf Empty, not a proto-plus class)
            "DeleteSecret": grpc.unary_unary_rpc_method_handler(
                self._delete_secret, request_deserializer=sm.DeleteSecretRequest.deserialize,
                response_serializer=empty_pb2.Empty.SerializeToString),
        }

    # ---- lookups ------------------------------------------------------------------------------
    def _secret(self, name: str, context: grpc.ServicerContext) -> _Secret:
        secret = self._secrets.get(name)
        if secret is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found or has no versions.")
        return secret

    def _version(self, name: str, context: grpc.ServicerContext) -> tuple[_Secret, _Version]:
        match = _VERSION.match(name)
        if match is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource field value in the request: {name}")
        secret_name, which = match.groups()
        secret = self._secret(secret_name, context)
        if which == "latest":
            if not secret.versions:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{secret_name}] not found or has no versions.")
            return secret, secret.versions[-1]  # the API: "an alias to the most recently created version"
        if not which.isdigit() or not 1 <= int(which) <= len(secret.versions):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
        return secret, secret.versions[int(which) - 1]

    @staticmethod
    def _version_proto(secret: _Secret, version: _Version) -> sm.SecretVersion:
        return sm.SecretVersion(name=f"{secret.name}/versions/{version.number}", create_time=version.created,
                                state=version.state)

    # ---- the RPCs -----------------------------------------------------------------------------
    def _create_secret(self, request: sm.CreateSecretRequest, context: grpc.ServicerContext) -> sm.Secret:
        if not _SECRET_ID.match(request.secret_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid secret id: {request.secret_id!r}")
        name = f"{request.parent}/secrets/{request.secret_id}"
        with self._lock:
            if name in self._secrets:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
            secret = self._secrets[name] = _Secret(name)
        return sm.Secret(name=name, create_time=secret.created, replication=request.secret.replication)

    def _delete_secret(self, request: sm.DeleteSecretRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        with self._lock:
            if self._secrets.pop(request.name, None) is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.name}] not found.")
        return empty_pb2.Empty()

    def _get_secret(self, request: sm.GetSecretRequest, context: grpc.ServicerContext) -> sm.Secret:
        with self._lock:
            secret = self._secret(request.name, context)
            return sm.Secret(name=secret.name, create_time=secret.created)

    def _list_secrets(self, request: sm.ListSecretsRequest, context: grpc.ServicerContext) -> sm.ListSecretsResponse:
        with self._lock:
            names = sorted(n for n in self._secrets if n.startswith(request.parent + "/secrets/"))
            return sm.ListSecretsResponse(secrets=[sm.Secret(name=n, create_time=self._secrets[n].created)
                                                   for n in names], total_size=len(names))

    def _add_version(self, request: sm.AddSecretVersionRequest, context: grpc.ServicerContext) -> sm.SecretVersion:
        data = request.payload.data
        if "data_crc32c" in request.payload and request.payload.data_crc32c != google_crc32c.value(data):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Checksum mismatch: the payload arrived corrupted.")
        with self._lock:
            secret = self._secret(request.parent, context)
            version = _Version(len(secret.versions) + 1, data)
            secret.versions.append(version)
            return self._version_proto(secret, version)

    def _get_version(self, request: sm.GetSecretVersionRequest, context: grpc.ServicerContext) -> sm.SecretVersion:
        with self._lock:
            return self._version_proto(*self._version(request.name, context))

    def _list_versions(self, request: sm.ListSecretVersionsRequest,
                       context: grpc.ServicerContext) -> sm.ListSecretVersionsResponse:
        with self._lock:
            secret = self._secret(request.parent, context)
            newest_first = [self._version_proto(secret, v) for v in reversed(secret.versions)]
        return sm.ListSecretVersionsResponse(versions=newest_first, total_size=len(newest_first))

    def _access(self, request: sm.AccessSecretVersionRequest,
                context: grpc.ServicerContext) -> sm.AccessSecretVersionResponse:
        with self._lock:
            secret, version = self._version(request.name, context)
            if version.state != _State.ENABLED:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              f"Secret Version [{secret.name}/versions/{version.number}] is in "
                              f"{_State(version.state).name} state.")
            self.accesses += 1
            return sm.AccessSecretVersionResponse(
                name=f"{secret.name}/versions/{version.number}",
                payload=sm.SecretPayload(data=version.data, data_crc32c=google_crc32c.value(version.data)),
            )

    def _set_state(self, name: str, state: Any, context: grpc.ServicerContext) -> sm.SecretVersion:
        with self._lock:
            secret, version = self._version(name, context)
            if version.state == _State.DESTROYED:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{name} is destroyed.")
            version.state = state
            if state == _State.DESTROYED:
                version.data = b""
            return self._version_proto(secret, version)

    def _enable(self, request: sm.EnableSecretVersionRequest, context: grpc.ServicerContext) -> sm.SecretVersion:
        return self._set_state(request.name, _State.ENABLED, context)

    def _disable(self, request: sm.DisableSecretVersionRequest, context: grpc.ServicerContext) -> sm.SecretVersion:
        return self._set_state(request.name, _State.DISABLED, context)

    def _destroy(self, request: sm.DestroySecretVersionRequest, context: grpc.ServicerContext) -> sm.SecretVersion:
        return self._set_state(request.name, _State.DESTROYED, context)
