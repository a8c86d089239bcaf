"""The signing root: an asymmetric Cloud KMS key, through the real google-cloud-kms client.

Every enabled version of the key is published in JWKS; the newest enabled version
signs new delegation certificates. Rotation = create a new version (it becomes the
signer at the next version refresh), and disable the old one only after every token it
rooted has expired. Data crossing the wire is CRC32C-checked both ways, as Google
recommends; a mismatch is retried once, then reported as KmsIntegrityError.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import google_crc32c
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.cloud import kms_v1
from jwt.utils import der_to_raw_signature

from shared.clock import Clock
from shared.errors import BackendUnavailable, KmsIntegrityError
from shared.google_retry import FAILURES, bounded_retry
from shared.tokens.jose import public_jwk

_JWS_ALG = {
    "EC_SIGN_P256_SHA256": "ES256",
    "RSA_SIGN_PKCS1_2048_SHA256": "RS256",
    "RSA_SIGN_PKCS1_3072_SHA256": "RS256",
    "RSA_SIGN_PKCS1_4096_SHA256": "RS256",
}
_VERSION_NUMBER = re.compile(r"/cryptoKeyVersions/(\d+)$")


class RootSigner(Protocol):
    def current_key(self) -> tuple[str, str]:
        """(kid, JWS alg) of the version that signs new certificates."""

    def sign(self, kid: str, signing_input: bytes) -> bytes:
        """The raw JWS signature of `signing_input` by the root version `kid`."""

    def public_jwks(self) -> list[dict[str, Any]]:
        """Public JWKs of every version that may have rooted a still-valid token."""


@dataclass(frozen=True)
class _RootVersion:
    name: str
    jws_alg: str
    public_key: Any
    jwk: dict[str, Any]


def kms_client(endpoint: str | None = None) -> kms_v1.KeyManagementServiceClient:
    """The real client; `endpoint` (host:port, plaintext) points it at the local stand-in."""
    if endpoint is None:
        return kms_v1.KeyManagementServiceClient()
    import grpc
    from google.cloud.kms_v1.services.key_management_service.transports import KeyManagementServiceGrpcTransport

    return kms_v1.KeyManagementServiceClient(
        transport=KeyManagementServiceGrpcTransport(channel=grpc.insecure_channel(endpoint))
    )


def _version_number(name: str) -> int:
    """The N of .../cryptoKeyVersions/N (versions sort by it)."""
    match = _VERSION_NUMBER.search(name)
    if match is None:
        raise ValueError(f"{name} is not a crypto key version name")
    return int(match.group(1))


def _crc32c(data: bytes) -> int:
    return google_crc32c.value(data)


class KmsRootSigner:
    """RootSigner over a Cloud KMS asymmetric signing key."""

    def __init__(self, client: kms_v1.KeyManagementServiceClient, key_name: str, clock: Clock,
                 *, version_refresh_s: int = 300, timeout_s: float = 10.0):
        self._client = client
        self._key_name = key_name
        self._clock = clock
        self._refresh_ms = version_refresh_s * 1000
        self._timeout_s = timeout_s
        self._retry = bounded_retry(timeout_s)
        self._lock = threading.Lock()
        self._versions: list[_RootVersion] = []
        self._known: dict[str, _RootVersion] = {}  # a version's public key never changes
        self._loaded_ms: int | None = None

    def _enabled_versions(self) -> list[_RootVersion]:
        with self._lock:
            now = self._clock.now_ms()
            if self._loaded_ms is None or now - self._loaded_ms >= self._refresh_ms:
                self._versions = self._load_versions()
                self._loaded_ms = now
            return self._versions

    def _load_versions(self) -> list[_RootVersion]:
        try:
            page = self._client.list_crypto_key_versions(
                request={"parent": self._key_name, "filter": "state=ENABLED"}, retry=self._retry,
                timeout=self._timeout_s,
            )
            names = [v.name for v in page]
        except FAILURES as exc:
            raise BackendUnavailable("kms") from exc
        if not names:
            raise BackendUnavailable("kms")  # a root with no enabled version cannot sign
        names.sort(key=_version_number)
        return [self._known.get(name) or self._fetch_version(name) for name in names]

    def _fetch_version(self, name: str) -> _RootVersion:
        for attempt in (1, 2):
            try:
                answer = self._client.get_public_key(request={"name": name}, retry=self._retry,
                                                     timeout=self._timeout_s)
            except FAILURES as exc:
                raise BackendUnavailable("kms") from exc
            if answer.name == name and answer.pem_crc32c == _crc32c(answer.pem.encode()):
                break
            if attempt == 2:
                raise KmsIntegrityError("public key")
        public_key = serialization.load_pem_public_key(answer.pem.encode())
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError(f"KMS key version {name} has a {type(public_key).__name__}, not an EC or RSA key")
        algorithm = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm(answer.algorithm).name
        if algorithm not in _JWS_ALG:
            raise ValueError(f"KMS key version {name} has unsupported algorithm {algorithm}")
        version = _RootVersion(name, _JWS_ALG[algorithm], public_key, public_jwk(public_key))
        self._known[name] = version
        return version

    def public_jwks(self) -> list[dict[str, Any]]:
        return [v.jwk for v in self._enabled_versions()]

    def current_key(self) -> tuple[str, str]:
        current = self._enabled_versions()[-1]
        return current.jwk["kid"], current.jws_alg

    def sign(self, kid: str, signing_input: bytes) -> bytes:
        version = next((v for v in self._enabled_versions() if v.jwk["kid"] == kid), None)
        if version is None:
            raise BackendUnavailable("kms")  # disabled between current_key() and now
        digest = hashlib.sha256(signing_input).digest()
        digest_crc = _crc32c(digest)
        for attempt in (1, 2):
            try:
                answer = self._client.asymmetric_sign(
                    request={"name": version.name, "digest": {"sha256": digest}, "digest_crc32c": digest_crc},
                    retry=self._retry, timeout=self._timeout_s,
                )
            except FAILURES as exc:
                raise BackendUnavailable("kms") from exc
            intact = (
                answer.verified_digest_crc32c
                and answer.name == version.name
                and answer.signature_crc32c == _crc32c(answer.signature)
            )
            if intact:
                break
            if attempt == 2:
                raise KmsIntegrityError("signature")
        if version.jws_alg == "ES256":
            # KMS returns DER; a JWS wants the raw 64-byte r||s.
            return der_to_raw_signature(answer.signature, version.public_key.curve)
        return answer.signature
