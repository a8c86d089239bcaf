"""Lease tokens: signed locally by a delegate key whose certificate a KMS root signs."""

from shared.tokens.delegation import DelegatedSigner
from shared.tokens.kms_root import KmsRootSigner, RootSigner

__all__ = ["DelegatedSigner", "KmsRootSigner", "RootSigner"]
