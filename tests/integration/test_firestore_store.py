"""FirestoreStore on Google's emulator: transactions where a write depends on a read, cursors.

Each test gets a project of its own (one database per project in Google's emulator),
so every listing holds exactly what the test wrote.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from google.cloud import firestore

from shared.domain import AuditEvent, EndReason, License, SessionEnd, SessionRecord, Tenant
from shared.errors import InvalidRequest, NotFound
from shared.ids import RandomIds
from shared.store import FirestoreStore

NOW_MS = 1_800_000_000_000
ids = RandomIds()


@pytest.fixture
def store(stack) -> Iterator[FirestoreStore]:
    client = firestore.Client(project=f"demo-store-{secrets.token_hex(4)}")
    yield FirestoreStore(client, timeout_s=10)
    client.close()


def _event(lic: License, kind: str, **details) -> AuditEvent:
    return AuditEvent(ids.event_id(), lic.tenant_id, lic.id, kind, "tests", NOW_MS, details=details)


def _license(store: FirestoreStore, tenant_id: str = "acme", **fields) -> License:
    lic = License(id=ids.license_id(), tenant_id=tenant_id, max_seats=3, tier="pro", features=("build",),
                  expires_ms=None, suspended=False, allowed_domains=(), lease_ttl_s=300, heartbeat_interval_s=60,
                  key_hash=secrets.token_hex(32), created_ms=NOW_MS, updated_ms=NOW_MS, **fields)
    store.create_license(lic, _event(lic, "license.create"))
    return lic


def _events(store: FirestoreStore, lic: License, kind: str) -> list[AuditEvent]:
    return [e for e in store.list_events(tenant_id=lic.tenant_id, license_id=lic.id) if e.type == kind]


def test_two_concurrent_changes_to_different_fields_both_hold(store):
    # given a license and two administrators who both read it before either writes
    lic = _license(store)
    both_read = threading.Barrier(2, timeout=30)

    def change_to(**values):
        runs = []

        def change(current: License) -> tuple[License, AuditEvent]:
            runs.append(current)
            if len(runs) == 1:
                both_read.wait()
            return replace(current, **values), _event(current, "license.update", changes=sorted(values))

        return change, runs

    seats, seat_runs = change_to(max_seats=7)
    domains, domain_runs = change_to(allowed_domains=("example.com",))

    # when both commit
    with ThreadPoolExecutor(2) as pool:
        written = list(pool.map(lambda change: store.update_license(lic.id, change), [seats, domains]))

    # then the license has both changes: the later was applied to the earlier's result
    stored = store.get_license(lic.id)
    assert stored is not None and stored.max_seats == 7 and stored.allowed_domains == ("example.com",)
    assert stored in written
    # Both read the same stored copy, so at least one had to run again; how many reruns the
    # emulator's optimistic concurrency takes (it may abort both once) is not a contract.
    assert seat_runs[0] == lic and domain_runs[0] == lic and max(len(seat_runs), len(domain_runs)) >= 2
    # whichever committed last ran on the other's result
    assert seat_runs[-1].allowed_domains == ("example.com",) or domain_runs[-1].max_seats == 7
    # and exactly one audit event each (a rerun's event was never written)
    assert len(_events(store, lic, "license.update")) == 2


def test_a_change_that_refuses_writes_nothing(store):
    lic = _license(store)

    def refuse(current: License) -> tuple[License, AuditEvent]:
        raise InvalidRequest("no")

    with pytest.raises(InvalidRequest):
        store.update_license(lic.id, refuse)
    assert store.get_license(lic.id) == lic and _events(store, lic, "license.update") == []
    with pytest.raises(NotFound):
        store.update_license(ids.license_id(), refuse)


def test_revocation_is_written_once_and_keeps_what_it_did_not_change(store):
    lic = _license(store)
    # a change committed after the caller of revoke read the license: the revocation keeps it
    store.update_license(lic.id, lambda current: (replace(current, max_seats=9), _event(current, "license.update")))

    assert store.revoke_license(replace(lic, revoked_ms=NOW_MS + 1, updated_ms=NOW_MS + 1),
                                _event(lic, "license.revoke"))
    assert not store.revoke_license(replace(lic, revoked_ms=NOW_MS + 2, updated_ms=NOW_MS + 2),
                                    _event(lic, "license.revoke"))

    stored = store.get_license(lic.id)
    assert stored is not None and stored.revoked_ms == NOW_MS + 1 and stored.max_seats == 9
    assert store.license_id_for_key(lic.key_hash) is None
    assert len(_events(store, lic, "license.revoke")) == 1


def test_listings_page_by_id_with_cursors(store):
    tenants = sorted(f"t-{secrets.token_hex(3)}" for _ in range(5))
    for tenant_id in tenants:
        store.create_tenant(Tenant(tenant_id, tenant_id.upper(), NOW_MS),
                            AuditEvent(ids.event_id(), tenant_id, None, "tenant.create", "tests", NOW_MS))
    mine = sorted(_license(store, tenants[0]).id for _ in range(5))
    others = [_license(store, tenants[1]).id for _ in range(2)]

    def walk(page_of, limit: int) -> list[str]:
        seen, after = [], ""
        while page := page_of(after, limit):
            seen += [item.id for item in page]
            after = page[-1].id
        return seen

    assert walk(lambda after, limit: store.list_tenants(after=after, limit=limit), 2) == tenants
    assert walk(lambda after, limit: store.list_licenses(tenant_id=tenants[0], after=after, limit=limit), 2) == mine
    assert walk(lambda after, limit: store.list_licenses(tenant_id=None, after=after, limit=limit), 3) == sorted(
        mine + others)
    assert store.list_licenses(tenant_id=tenants[0], after=mine[2], limit=10) == [store.get_license(i)
                                                                                  for i in mine[3:]]


def test_the_recovery_walk_pages_active_sessions_in_id_order(store):
    lic = _license(store)
    sessions = [SessionRecord(ids.session_id(lic.id), lic.id, lic.tenant_id, f"u{i}", f"hw{i}", NOW_MS, NOW_MS + 60_000)
                for i in range(7)]
    for session in sessions:
        store.record_grant(session, AuditEvent(ids.event_id(), lic.tenant_id, lic.id, "acquire", session.uid,
                                               NOW_MS, session_id=session.id))
    ended = sessions[3]
    store.record_borrow(ended.id, NOW_MS + 1000, _event(lic, "borrow"))
    store.record_ends([])  # nothing to end is nothing written
    store.record_ends([(SessionEnd(ended.id, EndReason.RELEASED, ended.uid, ended.hardware_id, NOW_MS, NOW_MS,
                                   NOW_MS + 5), lic.id, lic.tenant_id, _event(lic, "release"))])

    seen, after = [], ""
    while page := store.active_sessions_page(after=after, limit=2):
        seen += [s.id for s in page]
        after = page[-1].id
    assert seen == sorted(s.id for s in sessions if s is not ended)
