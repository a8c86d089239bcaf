"""Offline: the server is gone, the signed lease carries the tool until exp + grace."""

from __future__ import annotations

import threading
import time

import pytest
from sdk_probes import wait_for

from coditect_license import JwksCache, LeaseState, License, TokenExpired


def test_server_stopped_the_token_verifies_until_exp_plus_grace_then_lost(own_server, make_license, user,
                                                                         trusted_roots):
    lic = make_license(seats=1, lease_ttl_s=10, heartbeat_interval_s=2, offline_grace_s=5)
    events = []
    lease = License(lic.key, server=own_server.base_url, token_provider=user.provider(), hardware_id="hw-offline",
                    trusted_roots=trusted_roots,
                    on_lost=lambda lease, error: events.append(("lost", lease.state, error.code)),
                    on_expiring=lambda lease, left: events.append(("expiring", lease.state, left)),
                    on_regained=lambda lease: events.append(("regained", lease.state, None)))
    with lease:
        assert lease.claims.grace_s == 5 and lease.claims.borrowed is False
        # no fetch: only the pinned keys the SDK cached on disk
        offline = JwksCache(own_server.base_url, trusted_roots=trusted_roots)

        own_server.stop()
        wait_for(lambda: lease.state == LeaseState.RETRYING, 5, "RETRYING")
        claims = lease.claims  # the last token the server signed
        token = lease.token
        assert offline.verify(token, leeway_s=0).session_id == claims.session_id

        wait_for(lambda: lease.state == LeaseState.OFFLINE_GRACE, 12, "OFFLINE_GRACE after exp")
        assert time.time() >= claims.expires_at - 1 and lease.valid
        assert offline.verify(token, leeway_s=0).valid_until == claims.expires_at + 5  # past exp, inside grace

        # on_lost runs just after the state turns LOST (outside the lease's lock): wait for the call itself
        wait_for(lambda: [e[0] for e in events][-1:] == ["lost"], 8, "on_lost after exp + grace")
        assert lease.state == LeaseState.LOST and not lease.valid
        assert [e[0] for e in events] == ["expiring", "lost"]
        assert events[0][2] <= 5 and events[1][1:] == (LeaseState.LOST, "NETWORK")
        wait_for(lambda: time.time() >= claims.valid_until, 3, "the wall clock past exp + grace")
        with pytest.raises(TokenExpired):
            offline.verify(token, leeway_s=0)
        # the boundaries, by the signed claims: grace, then the stated clock-skew tolerance
        assert offline.verify(token, now=claims.valid_until - 1, leeway_s=0)
        with pytest.raises(TokenExpired):
            offline.verify(token, now=claims.valid_until, leeway_s=0)
        assert offline.verify(token, now=claims.valid_until + 59)  # CLOCK_SKEW_S = 60
        with pytest.raises(TokenExpired):
            offline.verify(token, now=claims.valid_until + 60)

        own_server.start()  # back: the SDK takes a seat again and says so
        wait_for(lambda: events[-1][0] == "regained", 15, "on_regained after the server is back")
        assert events[-1] == ("regained", LeaseState.ACTIVE, None) and lease.valid


def test_without_grace_the_lease_is_lost_at_exp(own_server, make_license, user):
    lic = make_license(seats=1, lease_ttl_s=10, heartbeat_interval_s=2)
    lost = []
    reported = threading.Event()

    def on_lost(lease, error):
        lost.append(time.time())
        reported.set()

    with License(lic.key, server=own_server.base_url, token_provider=user.provider(), hardware_id="hw-nograce",
                 on_lost=on_lost) as lease:
        assert lease.claims.grace_s == 0
        own_server.stop()
        # Wait for the callback, not the state: the state turns LOST first, on_lost runs just after.
        assert reported.wait(14), "on_lost was not called"
        assert lease.state == LeaseState.LOST
        assert abs(lost[0] - lease.claims.expires_at) <= 1.5
        assert lease.seconds_left() == 0 and not lease.valid
        assert lease.close() is False  # the release could not reach the server: said, not raised
