"""Wiring: each adapter built once per process, on first use, from Settings.

Lazily, not at import: a forked gunicorn worker must open its own gRPC channels and
Redis pool, and `health` must answer without any backend configured. Tests replace the
whole runtime (e.g. with a clock they move) through `install_runtime`.
"""

from __future__ import annotations

import threading

from shared.clock import Clock, SystemClock
from shared.config import Settings
from shared.ids import IdGenerator, RandomIds


class Runtime:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, ids: IdGenerator | None = None):
        self.settings = settings
        self.clock = clock or SystemClock()
        self.ids = ids or RandomIds()
        self._build_lock = threading.RLock()

    def _once(self, name: str, build):
        # Threads of one worker may race to the first use; build exactly once.
        with self._build_lock:
            if name not in self.__dict__:
                self.__dict__[name] = build()
            return self.__dict__[name]

    @property
    def redis(self):
        def build():
            import redis

            return redis.Redis.from_url(
                self.settings.require("redis_url"),
                socket_timeout=self.settings.redis_timeout_s,
                socket_connect_timeout=self.settings.redis_timeout_s,
                health_check_interval=30,
                max_connections=256,
            )

        return self._once("_redis", build)

    @property
    def seats(self):
        from shared.seats import SeatTable

        return self._once("_seats", lambda: SeatTable(self.redis))

    @property
    def store(self):
        def build():
            from google.cloud import firestore

            from shared.store import FirestoreStore

            client = firestore.Client(project=self.settings.project_id)
            return FirestoreStore(client, timeout_s=self.settings.firestore_timeout_s)

        return self._once("_store", build)

    @property
    def root_signer(self):
        def build():
            from shared.tokens.kms_root import KmsRootSigner, kms_client

            return KmsRootSigner(
                kms_client(self.settings.kms_endpoint), self.settings.require("lease_root_kms_key"), self.clock
            )

        return self._once("_root_signer", build)

    @property
    def signer(self):
        def build():
            from shared.store.models import LEASE_TOKEN_MAX_S
            from shared.tokens import DelegatedSigner

            return DelegatedSigner(
                self.root_signer, self.clock, issuer=self.settings.token_issuer, ttl_s=self.settings.delegation_ttl_s,
                lease_max_s=LEASE_TOKEN_MAX_S,
            )

        return self._once("_signer", build)

    @property
    def token_verifier(self):
        def build():
            from shared.auth import FirebaseTokenVerifier

            return FirebaseTokenVerifier(
                self.settings.project_id,
                emulated=self.settings.auth_emulated,
                certs_url=self.settings.id_token_certs_url,
                clock_skew_s=self.settings.auth_clock_skew_s,
            )

        return self._once("_token_verifier", build)

    @property
    def admin_token_verifier(self):
        """The admin function's: each token's account is also checked (see FirebaseTokenVerifier)."""
        if not self.settings.admin_checks_accounts:
            return self.token_verifier

        def build():
            from shared.auth import FirebaseTokenVerifier

            return FirebaseTokenVerifier(
                self.settings.project_id,
                emulated=self.settings.auth_emulated,
                check_account=True,
                certs_url=self.settings.id_token_certs_url,
                clock_skew_s=self.settings.auth_clock_skew_s,
            )

        return self._once("_admin_token_verifier", build)

    @property
    def licenses(self):
        def build():
            from shared.licensing.license_directory import LicenseDirectory

            return LicenseDirectory(self.store, self.seats, self.clock, ttl_s=self.settings.license_cache_ttl_s)

        return self._once("_licenses", build)

    @property
    def seat_service(self):
        def build():
            from shared.licensing.seat_service import SeatService

            return SeatService(
                licenses=self.licenses, seats=self.seats, store=self.store, signer=self.signer,
                clock=self.clock, ids=self.ids, issuer=self.settings.token_issuer,
                rate_limiter=self.rate_limiter, license_acquire_limit=self.settings.rate_limit_license_acquire,
            )

        return self._once("_seat_service", build)

    @property
    def rate_limiter(self):
        from shared.ratelimit import RedisRateLimiter

        return self._once("_rate_limiter", lambda: RedisRateLimiter(self.redis, self.clock))

    @property
    def local_rate_limiter(self):
        from shared.ratelimit import LocalRateLimiter

        return self._once("_local_rate_limiter", lambda: LocalRateLimiter(self.clock))

    @property
    def scheduler_verifier(self):
        def build():
            from shared.auth.scheduler_oidc import SchedulerTokenVerifier

            return SchedulerTokenVerifier(
                audience=self.settings.require("sweep_audience"),
                service_account=self.settings.require("scheduler_service_account"),
                certs_url=self.settings.oidc_certs_url,
            )

        return self._once("_scheduler_verifier", build)

    @property
    def sweeper(self):
        def build():
            from shared.licensing.sweep import Sweeper

            return Sweeper(seats=self.seats, store=self.store, licenses=self.licenses, redis_client=self.redis,
                           clock=self.clock, budget_s=self.settings.sweep_budget_s)

        return self._once("_sweeper", build)

    @property
    def provisioning(self):
        def build():
            from shared.licensing.provisioning import Provisioning

            return Provisioning(
                store=self.store, clock=self.clock, ids=self.ids,
                default_lease_ttl_s=self.settings.default_lease_ttl_s,
                default_heartbeat_interval_s=self.settings.default_heartbeat_interval_s,
            )

        return self._once("_provisioning", build)

    @property
    def administration(self):
        def build():
            from shared.licensing.administration import Administration

            return Administration(store=self.store, seats=self.seats, provisioning=self.provisioning,
                                  clock=self.clock, ids=self.ids)

        return self._once("_administration", build)


_current: Runtime | None = None
_current_lock = threading.Lock()


def runtime() -> Runtime:
    """The process's runtime, built from the environment on first use."""
    global _current
    if _current is None:
        with _current_lock:
            if _current is None:
                from shared.observability import configure_logging

                configure_logging()
                _current = Runtime(Settings.from_env())
    return _current


def install_runtime(replacement: Runtime | None) -> None:
    """Swap the process's runtime (tests); None rebuilds from the environment next time."""
    global _current
    with _current_lock:
        _current = replacement
