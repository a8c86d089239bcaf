"""The durable record in Firestore: tenants, licenses, key index, sessions, audit events."""

from shared.store.firestore_store import FirestoreStore

__all__ = ["FirestoreStore"]
