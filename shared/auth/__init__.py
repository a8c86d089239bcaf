"""Who is calling: Firebase ID tokens turned into a Principal."""

from shared.auth.firebase_tokens import FirebaseTokenVerifier, bearer_token
from shared.auth.principal import Principal

__all__ = ["FirebaseTokenVerifier", "Principal", "bearer_token"]
