"""The sweep's notification step: events recorded for administrators, out to Pub/Sub.

An audit event that is a notification (shared/domain/notifications.py) is recorded with
`notify_state: pending`, in the same commit as what it reports, so nothing is published
for something that did not happen and no round trip is added to the request that caused
it. Each sweep publishes what is pending, oldest first, in batches, and marks a batch
published only once Pub/Sub has all of it: a crash in between publishes it again
(at least once; a receiver de-duplicates on the event id). Without a topic
(NOTIFY_TOPIC unset) nothing is published and events wait.
"""

from __future__ import annotations

import time

from shared.clock import Clock
from shared.domain.notifications import message
from shared.licensing.ports import DurableRecord, NotificationPublisher, SweepLock

BATCH = 500


class NotificationOutbox:
    def __init__(self, *, store: DurableRecord, publisher: NotificationPublisher | None, clock: Clock):
        self._store = store
        self._publisher = publisher
        self._clock = clock

    def publish_pending(self, lock: SweepLock, deadline: float) -> tuple[int, int]:
        """(notifications published, Firestore writes); at least one batch, then until the
        deadline or nothing is pending."""
        if self._publisher is None:
            return 0, 0
        published = writes = 0
        while True:
            pending = self._store.pending_notifications(limit=BATCH)
            if not pending:
                break
            lock.check()
            self._publisher.publish([message(event, kind) for event, kind in pending])
            writes += self._store.mark_published([event.id for event, _ in pending], self._clock.now_ms())
            published += len(pending)
            if len(pending) < BATCH or time.monotonic() >= deadline:
                break
        return published, writes
