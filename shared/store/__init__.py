"""The durable record in Firestore: tenants, licenses, key index, sessions, audit events,
and the usage history."""

from shared.store.firestore_store import FirestoreStore
from shared.store.usage_store import FirestoreUsageStore

__all__ = ["FirestoreStore", "FirestoreUsageStore"]
