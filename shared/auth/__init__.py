"""Who is calling: Firebase ID tokens turned into a Principal."""

from shared.auth.firebase_tokens import FirebaseTokenVerifier, bearer_token
from shared.domain import Principal  # re-exported: the identity this package produces

__all__ = ["FirebaseTokenVerifier", "Principal", "bearer_token"]
