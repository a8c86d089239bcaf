"""In-process stand-in for Cloud KMS asymmetric signing.

Cloud KMS has no emulator, yet the lease signer must be exercised end to end
locally and in tests. This module is a real gRPC server speaking
``google.cloud.kms.v1.KeyManagementService`` (GetPublicKey, AsymmetricSign,
ListCryptoKeyVersions), so the production adapter runs unchanged against it:
only the client's transport channel points here instead of Google. It mirrors
the real service's integrity checks (CRC32C on digests, signatures and PEMs)
and its error codes, and offers fault injection to test the adapter's defences.
Keys live in memory only and vanish with the process.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import google_crc32c
import grpc
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from google.cloud import kms_v1

from devstack.grpc_standin import GrpcStandIn, unary

_SERVICE = "google.cloud.kms.v1.KeyManagementService"
_Algorithm = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm
_State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
_SOFTWARE = kms_v1.ProtectionLevel.SOFTWARE

# Supported algorithms -> key generator. Both sign a caller-supplied SHA-256 digest.
_KEYGEN: dict[str, Callable[[], Any]] = {
    "EC_SIGN_P256_SHA256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "RSA_SIGN_PKCS1_4096_SHA256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
}


def _crc32c(data: bytes) -> int:
    return google_crc32c.value(data)


@dataclass
class _Version:
    name: str
    algorithm: str
    private_key: Any
    pem: str
    state: Any = _State.ENABLED
    create_time: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))

    def sign(self, digest: bytes) -> bytes:
        prehashed = utils.Prehashed(hashes.SHA256())
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            return self.private_key.sign(digest, ec.ECDSA(prehashed))  # DER, like KMS
        return self.private_key.sign(digest, padding.PKCS1v15(), prehashed)


class KmsStandIn(GrpcStandIn):
    """A KeyManagementService gRPC server holding in-memory signing keys."""

    service = _SERVICE

    def __init__(self, *, port: int = 0) -> None:
        super().__init__(port=port)
        self._lock = threading.Lock()
        self._keys: dict[str, list[_Version]] = {}  # crypto key name -> versions 1..n
        self._bad_signatures = 0
        self._bad_public_keys = 0
        self._sign_calls = 0

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        return {
            "GetPublicKey": unary(self._get_public_key, kms_v1.GetPublicKeyRequest, kms_v1.PublicKey),
            "AsymmetricSign": unary(self._asymmetric_sign, kms_v1.AsymmetricSignRequest,
                                    kms_v1.AsymmetricSignResponse),
            "ListCryptoKeyVersions": unary(self._list_versions, kms_v1.ListCryptoKeyVersionsRequest,
                                           kms_v1.ListCryptoKeyVersionsResponse),
        }

    # ---- key administration (test / dev-stack side, not part of the RPC API) ----
    def create_key(self, key_name: str, algorithm: str = "EC_SIGN_P256_SHA256") -> str:
        if algorithm not in _KEYGEN:
            raise ValueError(f"unsupported algorithm {algorithm!r}; use one of {sorted(_KEYGEN)}")
        parts = key_name.split("/")
        if len(parts) != 8 or parts[0::2] != ["projects", "locations", "keyRings", "cryptoKeys"] or "" in parts:
            raise ValueError(f"not a cryptoKey name: {key_name!r}")
        with self._lock:
            versions = self._keys.get(key_name)
            if versions is not None:  # idempotent, so a restarted dev stack can re-run its setup
                if versions[0].algorithm != algorithm:
                    raise ValueError(f"{key_name} already exists with {versions[0].algorithm}")
                return versions[0].name
            self._keys[key_name] = []
        return self._add_version(key_name, algorithm)

    def rotate(self, key_name: str) -> str:
        with self._lock:
            if key_name not in self._keys:
                raise KeyError(key_name)
            algorithm = self._keys[key_name][0].algorithm
        return self._add_version(key_name, algorithm)

    def disable(self, version_name: str) -> None:
        with self._lock:
            version = self._find(version_name)
            if version is None:
                raise KeyError(version_name)
            version.state = _State.DISABLED

    def corrupt_next_signatures(self, count: int = 1) -> None:
        with self._lock:
            self._bad_signatures += count

    def corrupt_next_public_keys(self, count: int = 1) -> None:
        with self._lock:
            self._bad_public_keys += count

    @property
    def sign_calls(self) -> int:
        """AsymmetricSign RPCs received, including ones answered with an error."""
        with self._lock:
            return self._sign_calls

    def _add_version(self, key_name: str, algorithm: str) -> str:
        # Key generation (RSA-4096 takes a while) runs outside the lock.
        private_key = _KEYGEN[algorithm]()
        pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        with self._lock:
            versions = self._keys[key_name]
            name = f"{key_name}/cryptoKeyVersions/{len(versions) + 1}"
            versions.append(_Version(name, algorithm, private_key, pem))
            return name

    def _find(self, version_name: str) -> _Version | None:
        key_name, _, number = version_name.rpartition("/cryptoKeyVersions/")
        versions = self._keys.get(key_name, [])
        if not number.isdigit() or not 1 <= int(number) <= len(versions):
            return None
        return versions[int(number) - 1]

    # ---- RPC handlers ----------------------------------------------------
    def _get_public_key(self, request: kms_v1.GetPublicKeyRequest, context: grpc.ServicerContext) -> kms_v1.PublicKey:
        with self._lock:
            version = self._find(request.name)
            if version is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} not found")
            crc = _crc32c(version.pem.encode())
            if self._bad_public_keys:
                self._bad_public_keys -= 1
                crc ^= 1
        return kms_v1.PublicKey(pem=version.pem, pem_crc32c=crc, name=version.name,
                                algorithm=getattr(_Algorithm, version.algorithm), protection_level=_SOFTWARE)

    def _asymmetric_sign(self, request: kms_v1.AsymmetricSignRequest,
                         context: grpc.ServicerContext) -> kms_v1.AsymmetricSignResponse:
        with self._lock:
            self._sign_calls += 1
            version = self._find(request.name)
            if version is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} not found")
            if version.state != _State.ENABLED:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{request.name} is not enabled")
        digest = request.digest.sha256
        if len(digest) != 32 or request.digest.sha384 or request.digest.sha512:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{version.algorithm} needs a 32-byte sha256 digest")
        # Presence, not truthiness: a digest whose CRC32C is 0 must still be checked.
        checked = "digest_crc32c" in request
        if checked and request.digest_crc32c != _crc32c(digest):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "digest_crc32c does not match digest")
        signature = version.sign(digest)
        crc = _crc32c(signature)
        with self._lock:
            if self._bad_signatures:
                self._bad_signatures -= 1
                crc ^= 1
        return kms_v1.AsymmetricSignResponse(signature=signature, signature_crc32c=crc,
                                             verified_digest_crc32c=checked, name=version.name,
                                             protection_level=_SOFTWARE)

    def _list_versions(self, request: kms_v1.ListCryptoKeyVersionsRequest,
                       context: grpc.ServicerContext) -> kms_v1.ListCryptoKeyVersionsResponse:
        enabled_only = request.filter.replace(" ", "") == "state=ENABLED"  # other filters: ignored
        with self._lock:
            if request.parent not in self._keys:
                context.abort(grpc.StatusCode.NOT_FOUND, f"{request.parent} not found")
            versions = [
                kms_v1.CryptoKeyVersion(name=v.name, state=v.state, algorithm=getattr(_Algorithm, v.algorithm),
                                        protection_level=_SOFTWARE, create_time=v.create_time)
                for v in self._keys[request.parent] if not enabled_only or v.state == _State.ENABLED
            ]
        return kms_v1.ListCryptoKeyVersionsResponse(crypto_key_versions=versions, total_size=len(versions))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a Cloud KMS stand-in for the local dev stack.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--key", required=True, help="cryptoKey resource name to create")
    parser.add_argument("--algorithm", default="EC_SIGN_P256_SHA256", choices=sorted(_KEYGEN))
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def watch_stdin() -> None:
        # The parent holds our stdin open; EOF means it is gone, so we must not outlive it.
        try:
            while os.read(sys.stdin.fileno(), 4096):
                pass
        except (OSError, ValueError):
            pass
        stop.set()

    standin = KmsStandIn(port=args.port)
    standin.create_key(args.key, args.algorithm)
    with standin.start():
        print(json.dumps({"address": standin.address, "key": args.key}), flush=True)
        threading.Thread(target=watch_stdin, daemon=True).start()
        while not stop.wait(0.5):  # a timed wait keeps the main thread responsive to signals
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
