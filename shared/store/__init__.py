"""The durable record in Firestore: tenants, licenses, key index, sessions, audit events."""

from shared.store.firestore_store import FirestoreStore
from shared.store.models import AuditEvent, License, SessionRecord, Tenant

__all__ = ["AuditEvent", "FirestoreStore", "License", "SessionRecord", "Tenant"]
