"""Usage history in Firestore (shared/domain/usage.py says what the figures are).

    usage_days/{license_id}_{day}   one document per license and UTC day with any use:
        license_id, tenant_id, day
        hours       {"HH": figures of that closed hour}   (dropped after the retention)
        has_hours   whether `hours` is still there (the retention step's query)
        total       the closed hours rolled up (kept for good: reports past the
                    retention read days)
        users       {uid: {s, n, p, l}} the day's use per user so far
        users_through  the last hour whose users are in `users` (so a repeated close of
                    an hour never adds them twice)
    usage_checkpoints/{hour}_{shard}  the counters only Redis sees (refusals, queue waits),
        as the sweep last took them, for the hours not closed yet: hour, and
        c.{license_id} = JSON of that license's counters. A license's shard is a hash of its
        id modulo `checkpoint_shards` (USAGE_CHECKPOINT_SHARDS, default 1): a sweep makes one
        write per shard for all its licenses, however many refused someone. A document
        holds about 3,000 licenses' counters within Firestore's 1 MiB: more licenses with
        refusals in one hour than that need more shards. Readers take the largest value of
        each counter over the hour's documents, so changing the shard count is safe.
    usage_state/hours               closed_through: the last hour closed for every license

The sweep is the only writer (under its fenced lock); every write is a whole-value
`set`, so one repeated after a crash writes the same thing again.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from shared.store.bounded_calls import BoundedCalls

_BATCH = 500  # Firestore's limit of writes per commit
_BATCH_BYTES = 2 * 1024 * 1024  # a commit's documents, as JSON: well under any request limit
_DAY_FIELDS = ["license_id", "tenant_id", "day", "total"]


class FirestoreUsageStore(BoundedCalls):
    def __init__(self, client: firestore.Client, *, timeout_s: float = 10.0, checkpoint_shards: int = 1):
        if checkpoint_shards < 1:
            raise ValueError("checkpoint_shards must be at least 1")
        super().__init__(client, timeout_s=timeout_s)
        self._shards = checkpoint_shards

    def _documents(self, query: firestore.Query) -> list[dict[str, Any]]:
        return [fields for _, fields in self._stream(query)]

    # -- which hours are closed -------------------------------------------------------------
    def closed_through(self) -> str | None:
        """The last hour closed for every license ("YYYY-MM-DDTHH"), None before the first."""
        snap = self._call(self._db.collection("usage_state").document("hours").get, timeout=self._timeout_s)
        return (snap.to_dict() or {}).get("closed_through") if snap.exists else None

    def set_closed_through(self, hour: str) -> None:
        """Mark `hour` closed (and forget where closing it had got to)."""
        self._call(self._db.collection("usage_state").document("hours").set, {"closed_through": hour},
                   timeout=self._timeout_s)

    def closing_after(self, hour: str) -> str:
        """The last license whose figures of `hour` are written, if a sweep stopped closing
        it halfway ("" otherwise)."""
        snap = self._call(self._db.collection("usage_state").document("hours").get, timeout=self._timeout_s)
        closing = (snap.to_dict() or {}).get("closing") or {} if snap.exists else {}
        return str(closing.get("after", "")) if closing.get("hour") == hour else ""

    def save_closing(self, hour: str, after: str) -> None:
        self._call(self._db.collection("usage_state").document("hours").set,
                   {"closing": {"hour": hour, "after": after}}, merge=True, timeout=self._timeout_s)

    # -- days --------------------------------------------------------------------------------
    def days(self, doc_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The day documents of these ids that exist, by id (one batched read)."""
        refs = [self._db.collection("usage_days").document(doc_id) for doc_id in doc_ids]
        if not refs:
            return {}
        snaps = self._call(lambda: list(self._db.get_all(refs, timeout=self._timeout_s)))
        return {snap.id: snap.to_dict() or {} for snap in snaps if snap.exists}

    def write_days(self, docs: dict[str, dict[str, Any]], *, hour: str) -> int:
        """Write these day documents as closing `hour` changed them: that hour's entry, the
        totals and the users, each replaced whole (the other hours stay as they are, and
        are not sent again). Commits hold at most 500 writes and about 2 MiB (Firestore
        refuses a request over 10 MiB, its emulator over 4). The number of document writes."""
        fields = [*_DAY_FIELDS, "has_hours", "users", "users_through", FieldPath("hours", hour[11:13]).to_api_repr()]
        batch, count, size = self._db.batch(), 0, 0
        for doc_id, doc in sorted(docs.items()):
            sent = {**doc, "hours": {hour[11:13]: doc["hours"][hour[11:13]]}}
            bytes_ = len(json.dumps(sent, separators=(",", ":")))
            if count and (count == _BATCH or size + bytes_ > _BATCH_BYTES):
                self._call(batch.commit, timeout=self._timeout_s)
                batch, count, size = self._db.batch(), 0, 0
            batch.set(self._db.collection("usage_days").document(doc_id), sent, merge=fields)
            count, size = count + 1, size + bytes_
        if count:
            self._call(batch.commit, timeout=self._timeout_s)
        return len(docs)

    def license_days(self, license_id: str, from_day: str, to_day: str) -> list[dict[str, Any]]:
        """A license's day documents in [from_day, to_day), whole (hours and users)."""
        query = (self._db.collection("usage_days")
                 .where(filter=firestore.FieldFilter("license_id", "==", license_id))
                 .where(filter=firestore.FieldFilter("day", ">=", from_day))
                 .where(filter=firestore.FieldFilter("day", "<", to_day)))
        return sorted(self._documents(query), key=lambda d: d["day"])

    def tenant_days(self, tenant_id: str | None, from_day: str, to_day: str) -> list[dict[str, Any]]:
        """The day totals (no hours, no users) of one tenant's licenses, or every tenant's."""
        query: firestore.Query | firestore.CollectionReference = self._db.collection("usage_days")
        if tenant_id is not None:
            query = query.where(filter=firestore.FieldFilter("tenant_id", "==", tenant_id))
        query = (query.where(filter=firestore.FieldFilter("day", ">=", from_day))
                 .where(filter=firestore.FieldFilter("day", "<", to_day)).select(_DAY_FIELDS))
        return self._documents(query)

    # -- the counters' checkpoints ---------------------------------------------------------------
    def write_checkpoint(self, hour: str, counters: dict[str, dict[str, int]]) -> int:
        """Record these licenses' counters of `hour` (each license's whole set: it replaces
        what was there; other licenses' entries stay); the number of document writes."""
        by_shard: dict[int, dict[str, str]] = {}
        for license_id, values in counters.items():
            shard = zlib.crc32(license_id.encode()) % self._shards
            by_shard.setdefault(shard, {})[license_id] = json.dumps(values, sort_keys=True, separators=(",", ":"))
        for shard, entries in sorted(by_shard.items()):
            self._call(self._db.collection("usage_checkpoints").document(f"{hour}_{shard:02d}").set,
                       {"hour": hour, "c": entries}, merge=True, timeout=self._timeout_s)
        return len(by_shard)

    def _hour_documents(self, hour: str) -> firestore.Query:
        return self._db.collection("usage_checkpoints").where(filter=firestore.FieldFilter("hour", "==", hour))

    def checkpoint(self, hour: str) -> dict[str, dict[str, int]]:
        """Every license's counters of `hour`, as last checkpointed."""
        out: dict[str, dict[str, int]] = {}
        for doc in self._documents(self._hour_documents(hour)):
            for license_id, raw in (doc.get("c") or {}).items():
                _raise(out.setdefault(license_id, {}), json.loads(raw))
        return out

    def license_checkpoints(self, license_id: str) -> dict[str, dict[str, int]]:
        """One license's checkpointed counters of every hour not closed yet, by hour (the
        collection holds only those few hours; each read is masked to this license)."""
        field = FieldPath("c", license_id).to_api_repr()
        query = self._db.collection("usage_checkpoints").select(["hour", field])
        out: dict[str, dict[str, int]] = {}
        for doc in self._documents(query):
            raw = (doc.get("c") or {}).get(license_id)
            if raw is not None:
                _raise(out.setdefault(doc["hour"], {}), json.loads(raw))
        return out

    def drop_checkpoint(self, hour: str) -> int:
        """Delete the hour's checkpoint documents (once the hour is closed); how many."""
        refs = [snap.reference for snap in self._call(
            lambda: list(self._hour_documents(hour).select([]).stream(timeout=self._timeout_s)))]
        if refs:
            batch = self._db.batch()
            for ref in refs:
                batch.delete(ref)
            self._call(batch.commit, timeout=self._timeout_s)
        return len(refs)

    # -- retention ---------------------------------------------------------------------------------
    def days_with_hours_before(self, day: str, *, limit: int) -> list[dict[str, Any]]:
        """Day documents before `day` that still hold their hours (oldest first)."""
        query = (self._db.collection("usage_days")
                 .where(filter=firestore.FieldFilter("has_hours", "==", True))
                 .where(filter=firestore.FieldFilter("day", "<", day))
                 .order_by("day").limit(limit).select(["license_id", "day"]))
        return self._documents(query)

    def drop_hours(self, doc_ids: list[str]) -> int:
        """Keep only the totals and users of these days; the number of document writes."""
        for start in range(0, len(doc_ids), _BATCH):
            batch = self._db.batch()
            for doc_id in doc_ids[start : start + _BATCH]:
                batch.update(self._db.collection("usage_days").document(doc_id),
                             {"hours": firestore.DELETE_FIELD, "has_hours": False})
            self._call(batch.commit, timeout=self._timeout_s)
        return len(doc_ids)


def _raise(target: dict[str, int], values: dict[str, int]) -> None:
    """Counters only grow within an hour: of two copies, the larger of each is the later."""
    for name, value in values.items():
        target[name] = max(target.get(name, 0), int(value))
