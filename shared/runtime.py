"""Wiring: each adapter built once per process, on first use, from Settings.

Lazily, not at import: a forked gunicorn worker must open its own gRPC channels and
Redis pool, and `health` must answer without any backend configured; each property
imports its adapter only when first used, so a function's bundle needs only the
libraries of the adapters it touches. Tests replace the whole runtime (e.g. with a clock
they move) through `install_runtime`. Properties are typed with the ports the use cases
see (shared/licensing/ports.py), or the adapter where only the wiring uses it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from shared.clock import Clock, SystemClock
from shared.config import Settings
from shared.ids import IdGenerator, RandomIds

if TYPE_CHECKING:  # adapters are imported lazily at run time (see the module doc)
    import redis
    from google.cloud import firestore

    from shared.auth.firebase_tokens import FirebaseTokenVerifier
    from shared.auth.machine_keys import MachineKeyVerifier
    from shared.auth.scheduler_oidc import SchedulerTokenVerifier
    from shared.google_secrets import SecretReader
    from shared.licensing.administration import Administration
    from shared.licensing.anomaly_admin import AnomalyAdmin
    from shared.licensing.anomaly_watch import AnomalyWatch
    from shared.licensing.expiry_scan import ExpiryScan
    from shared.licensing.license_directory import LicenseDirectory
    from shared.licensing.notification_outbox import NotificationOutbox
    from shared.licensing.ports import (
        DeliveryRecord,
        DurableRecord,
        LeaseSigner,
        Mailer,
        RateLimiter,
        SeatLedger,
        SweepLedger,
        UsageRecord,
    )
    from shared.licensing.provisioning import Provisioning
    from shared.licensing.seat_service import SeatService
    from shared.licensing.sweep import Sweeper
    from shared.licensing.usage_history import UsageHistory
    from shared.licensing.usage_reports import UsageReports
    from shared.licensing.webhook_admin import WebhookAdmin
    from shared.licensing.webhook_delivery import WebhookDelivery
    from shared.licensing.webhook_dispatch import WebhookDispatch
    from shared.ratelimit.local_limits import LocalRateLimiter
    from shared.seats.signals import SignalLedger
    from shared.store import FirestoreStore
    from shared.tokens.kms_root import RootSigner
    from shared.tokens.verification import LeaseTokenChecker

Built = TypeVar("Built")


class Runtime:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, ids: IdGenerator | None = None):
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.ids: IdGenerator = ids or RandomIds()
        self._build_lock = threading.RLock()
        self._built: dict[str, Any] = {}

    def override(self, name: str, adapter: Any) -> None:
        """Use `adapter` as the one named (tests: e.g. "firestore" with a store that fails)."""
        with self._build_lock:
            self._built[name] = adapter

    def _once(self, name: str, build: Callable[[], Built]) -> Built:
        # Threads of one worker may race to the first use; build exactly once.
        with self._build_lock:
            if name not in self._built:
                self._built[name] = build()
            built: Built = self._built[name]
            return built

    @property
    def redis(self) -> redis.Redis:
        def build() -> redis.Redis:
            from shared.seats.connection import CredentialCache, RedisCredentials, connect

            settings = self.settings
            url = settings.require("redis_url")
            if not (settings.redis_auth_secret or settings.redis_ca_secret):
                return connect(url, timeout_s=settings.redis_timeout_s,
                               check_hostname=settings.redis_tls_check_hostname)

            def read() -> RedisCredentials:
                secrets = self.secrets
                return RedisCredentials(
                    # .strip(): a version added with `echo` ends in a newline that is not the AUTH string's
                    password=secrets.text(settings.redis_auth_secret).strip() if settings.redis_auth_secret else None,
                    ca_pem=secrets.text(settings.redis_ca_secret) if settings.redis_ca_secret else None,
                )

            return connect(url, credentials=CredentialCache(read), timeout_s=settings.redis_timeout_s,
                           check_hostname=settings.redis_tls_check_hostname)

        return self._once("redis", build)

    @property
    def secrets(self) -> SecretReader:
        def build() -> SecretReader:
            from shared.google_secrets import SecretReader, secret_manager_client

            return SecretReader(secret_manager_client(self.settings.secret_manager_endpoint))

        return self._once("secrets", build)

    @property
    def seats(self) -> SeatLedger:
        from shared.seats import SeatTable

        return self._once("seats", lambda: SeatTable(
            self.redis, wait_replicas=self.settings.redis_wait_replicas,
            wait_timeout_ms=self.settings.redis_wait_timeout_ms, unreplicated=self.settings.redis_wait_fallback))

    @property
    def signals(self) -> SignalLedger:
        from shared.seats.signals import SignalLedger

        return self._once("signals", lambda: SignalLedger(self.redis))

    @property
    def sweep_ledger(self) -> SweepLedger:
        from shared.seats import SweepLedger

        return self._once("sweep_ledger", lambda: SweepLedger(self.redis))

    @property
    def firestore_client(self) -> firestore.Client:
        def build() -> firestore.Client:
            from google.cloud import firestore

            return firestore.Client(project=self.settings.project_id)

        return self._once("firestore_client", build)

    @property
    def firestore(self) -> FirestoreStore:
        def build() -> FirestoreStore:
            from shared.store import FirestoreStore

            return FirestoreStore(self.firestore_client, timeout_s=self.settings.firestore_timeout_s)

        return self._once("firestore", build)

    @property
    def usage(self) -> UsageRecord:
        def build() -> UsageRecord:
            from shared.store import FirestoreUsageStore

            return FirestoreUsageStore(self.firestore_client, timeout_s=self.settings.firestore_timeout_s,
                                       checkpoint_shards=self.settings.usage_checkpoint_shards)

        return self._once("usage", build)

    @property
    def webhook_admin(self) -> WebhookAdmin:
        def build() -> WebhookAdmin:
            from shared.licensing.webhook_admin import WebhookAdmin

            prefix = self.settings.webhook_secret_prefix
            secrets = None
            if prefix:
                from shared.google_secrets import secret_manager_client
                from shared.webhook_secrets import SecretWriter

                secrets = SecretWriter(secret_manager_client(self.settings.secret_manager_endpoint), prefix)
            # Unset prefix: no endpoint can be made, so there is nothing to deliver a test to.
            return WebhookAdmin(store=self.store, secrets=secrets, clock=self.clock, ids=self.ids,
                                allow_private=self.settings.webhook_allow_private, deliveries=self.deliveries,
                                delivery=self.webhook_delivery if prefix else None,
                                sends_mail=bool(self.settings.smtp_host))

        return self._once("webhook_admin", build)

    @property
    def deliveries(self) -> DeliveryRecord:
        def build() -> DeliveryRecord:
            from shared.store.delivery_store import FirestoreDeliveryStore

            return FirestoreDeliveryStore(self.firestore_client, timeout_s=self.settings.firestore_timeout_s)

        return self._once("deliveries", build)

    @property
    def webhook_delivery(self) -> WebhookDelivery:
        def build() -> WebhookDelivery:
            from shared.google_secrets import secret_manager_client
            from shared.licensing.webhook_delivery import WebhookDelivery
            from shared.webhook_http import WebhookSender
            from shared.webhook_secrets import SigningSecretReader

            reader = SigningSecretReader(secret_manager_client(self.settings.secret_manager_endpoint),
                                         self.settings.require("webhook_secret_prefix"))
            return WebhookDelivery(secrets=reader, sender=WebhookSender(), clock=self.clock,
                                   allow_private=self.settings.webhook_allow_private, mailer=self.mailer)

        return self._once("webhook_delivery", build)

    @property
    def mailer(self) -> Mailer | None:
        """E-mail to mailto: endpoints through the operator's relay; None without SMTP_HOST.
        Built only with webhook_delivery (admin's test events, notify), the only functions
        Terraform gives the SMTP_* settings and the password secret's accessor grant."""

        def build() -> Mailer | None:
            settings = self.settings
            if not settings.smtp_host:
                return None
            from shared.smtp_mail import SmtpMailer

            secret = settings.smtp_password_secret
            return SmtpMailer(host=settings.smtp_host, port=settings.smtp_port, starttls=settings.smtp_starttls,
                              username=settings.smtp_username, mail_from=settings.require("mail_from"),
                              password=(lambda: self.secrets.text(secret)) if secret else None,
                              ca_file=settings.smtp_ca_file)

        return self._once("mailer", build)

    @property
    def webhook_dispatch(self) -> WebhookDispatch:
        """The notify function's run. Without NOTIFY_SUBSCRIPTION it takes nothing new and
        only works through the deliveries already due."""

        def build() -> WebhookDispatch:
            from shared.licensing.webhook_dispatch import WebhookDispatch

            inbox = None
            if self.settings.notify_subscription:
                from shared.pubsub.subscriber import PubSubInbox

                inbox = PubSubInbox(self.settings.notify_subscription, pull_wait_s=self.settings.notify_pull_wait_s)
            return WebhookDispatch(store=self.store, deliveries=self.deliveries, inbox=inbox,
                                   delivery=self.webhook_delivery, clock=self.clock, ids=self.ids)

        return self._once("webhook_dispatch", build)

    @property
    def expiry_scan(self) -> ExpiryScan:
        def build() -> ExpiryScan:
            from shared.licensing.expiry_scan import ExpiryScan

            return ExpiryScan(store=self.store, clock=self.clock)

        return self._once("expiry_scan", build)

    @property
    def notification_outbox(self) -> NotificationOutbox:
        def build() -> NotificationOutbox:
            from shared.licensing.notification_outbox import NotificationOutbox

            publisher = None
            if self.settings.notify_topic:
                from shared.pubsub.publisher import PubSubPublisher

                publisher = PubSubPublisher(self.settings.notify_topic)
            return NotificationOutbox(store=self.store, publisher=publisher, clock=self.clock)

        return self._once("notification_outbox", build)

    @property
    def usage_history(self) -> UsageHistory:
        def build() -> UsageHistory:
            from shared.licensing.usage_history import UsageHistory

            return UsageHistory(seats=self.seats, store=self.store, usage=self.usage, licenses=self.licenses,
                                clock=self.clock, close_after_s=self.settings.usage_close_after_s,
                                retention_days=self.settings.usage_retention_days)

        return self._once("usage_history", build)

    @property
    def usage_reports(self) -> UsageReports:
        def build() -> UsageReports:
            from shared.licensing.usage_reports import UsageReports

            return UsageReports(store=self.store, history=self.usage_history, seats=self.seats, signer=self.signer,
                                clock=self.clock, ids=self.ids, issuer=self.settings.token_issuer,
                                retention_days=self.settings.usage_retention_days)

        return self._once("usage_reports", build)

    @property
    def store(self) -> DurableRecord:
        return self.firestore

    @property
    def root_signer(self) -> RootSigner:
        def build() -> RootSigner:
            from shared.tokens.kms_root import KmsRootSigner, kms_client

            return KmsRootSigner(
                kms_client(self.settings.kms_endpoint), self.settings.require("lease_root_kms_key"), self.clock
            )

        return self._once("root_signer", build)

    @property
    def signer(self) -> LeaseSigner:
        def build() -> LeaseSigner:
            from shared.domain import LEASE_TOKEN_MAX_S
            from shared.tokens import DelegatedSigner

            return DelegatedSigner(
                self.root_signer, self.clock, issuer=self.settings.token_issuer, ttl_s=self.settings.delegation_ttl_s,
                lease_max_s=LEASE_TOKEN_MAX_S,
            )

        return self._once("signer", build)

    @property
    def lease_checker(self) -> LeaseTokenChecker:
        def build() -> LeaseTokenChecker:
            from shared.tokens.verification import LeaseTokenChecker

            return LeaseTokenChecker(self.root_signer, issuer=self.settings.token_issuer)

        return self._once("lease_checker", build)

    @property
    def token_verifier(self) -> FirebaseTokenVerifier:
        def build() -> FirebaseTokenVerifier:
            from shared.auth.firebase_tokens import FirebaseTokenVerifier

            return FirebaseTokenVerifier(
                self.settings.project_id,
                emulated=self.settings.auth_emulated,
                certs_url=self.settings.id_token_certs_url,
                clock_skew_s=self.settings.auth_clock_skew_s,
            )

        return self._once("token_verifier", build)

    @property
    def admin_token_verifier(self) -> FirebaseTokenVerifier:
        """The admin function's: each token's account is also checked (see FirebaseTokenVerifier)."""
        if not self.settings.admin_checks_accounts:
            return self.token_verifier

        def build() -> FirebaseTokenVerifier:
            from shared.auth.firebase_tokens import FirebaseTokenVerifier

            return FirebaseTokenVerifier(
                self.settings.project_id,
                emulated=self.settings.auth_emulated,
                check_account=True,
                certs_url=self.settings.id_token_certs_url,
                clock_skew_s=self.settings.auth_clock_skew_s,
            )

        return self._once("admin_token_verifier", build)

    @property
    def machine_key_verifier(self) -> MachineKeyVerifier:
        """The seat functions' check of machine keys (shared/auth/machine_keys.py)."""

        def build() -> MachineKeyVerifier:
            from shared.auth.machine_keys import MachineKeyVerifier
            from shared.errors import BackendUnavailable
            from shared.seats.keys import machine_key_use_slot
            from shared.seats.redis_calls import redis_unavailable

            def first_use(key_id: str, window_ms: int) -> bool:
                # One slot per key and window of the service's clock: the first to take it records.
                slot = machine_key_use_slot(key_id, self.clock.now_ms() // window_ms)
                try:
                    with redis_unavailable():
                        return bool(self.redis.set(slot, 1, nx=True, px=2 * window_ms))
                except BackendUnavailable:
                    return False  # a statistic: skipped while Redis is away

            return MachineKeyVerifier(self.firestore, self.clock, first_use=first_use)

        return self._once("machine_key_verifier", build)

    @property
    def licenses(self) -> LicenseDirectory:
        def build() -> LicenseDirectory:
            from shared.licensing.license_directory import LicenseDirectory

            return LicenseDirectory(self.store, self.seats, self.clock, ttl_s=self.settings.license_cache_ttl_s)

        return self._once("licenses", build)

    @property
    def seat_service(self) -> SeatService:
        def build() -> SeatService:
            from shared.licensing.seat_service import SeatService

            return SeatService(
                licenses=self.licenses, seats=self.seats, store=self.store, usage=self.usage, signer=self.signer,
                lease_proof=self.lease_checker,
                clock=self.clock, ids=self.ids, issuer=self.settings.token_issuer,
                rate_limiter=self.rate_limiter, license_acquire_limit=self.settings.rate_limit_license_acquire,
                signals=self.signals,
            )

        return self._once("seat_service", build)

    @property
    def rate_limiter(self) -> RateLimiter:
        from shared.ratelimit.shared_limits import RedisRateLimiter

        return self._once("rate_limiter", lambda: RedisRateLimiter(self.redis, self.clock))

    @property
    def local_rate_limiter(self) -> LocalRateLimiter:
        from shared.ratelimit.local_limits import LocalRateLimiter

        return self._once("local_rate_limiter", lambda: LocalRateLimiter(self.clock))

    def scheduler_verifier(self, function: str) -> SchedulerTokenVerifier:
        """The check of Cloud Scheduler's tokens for `function` (sweep, notify): each is called
        with its own URL as the audience, so a token for one does not open another."""

        def build() -> SchedulerTokenVerifier:
            from shared.auth.scheduler_oidc import SchedulerTokenVerifier

            return SchedulerTokenVerifier(
                audience=self.settings.scheduler_audience(function),
                service_account=self.settings.require("scheduler_service_account"),
                certs_url=self.settings.oidc_certs_url,
                trust_platform_auth=self.settings.scheduler_trust_platform_auth,
            )

        return self._once(f"scheduler_verifier:{function}", build)

    @property
    def sweeper(self) -> Sweeper:
        def build() -> Sweeper:
            from shared.licensing.sweep import Sweeper

            return Sweeper(seats=self.seats, ledger=self.sweep_ledger, store=self.store, licenses=self.licenses,
                           history=self.usage_history, outbox=self.notification_outbox,
                           anomalies=self.anomaly_watch, clock=self.clock, budget_s=self.settings.sweep_budget_s)

        return self._once("sweeper", build)

    @property
    def anomaly_watch(self) -> AnomalyWatch:
        def build() -> AnomalyWatch:
            from shared.licensing.anomaly_watch import AnomalyWatch

            return AnomalyWatch(signals=self.signals, store=self.store, licenses=self.licenses, clock=self.clock,
                                interval_s=self.settings.anomaly_check_interval_s)

        return self._once("anomaly_watch", build)

    @property
    def anomaly_admin(self) -> AnomalyAdmin:
        def build() -> AnomalyAdmin:
            from shared.licensing.anomaly_admin import AnomalyAdmin

            return AnomalyAdmin(store=self.store, clock=self.clock)

        return self._once("anomaly_admin", build)

    @property
    def provisioning(self) -> Provisioning:
        def build() -> Provisioning:
            from shared.licensing.provisioning import Provisioning

            return Provisioning(
                store=self.store, clock=self.clock, ids=self.ids,
                default_lease_ttl_s=self.settings.default_lease_ttl_s,
                default_heartbeat_interval_s=self.settings.default_heartbeat_interval_s,
            )

        return self._once("provisioning", build)

    @property
    def administration(self) -> Administration:
        def build() -> Administration:
            from shared.licensing.administration import Administration

            return Administration(store=self.store, usage=self.usage, seats=self.seats, provisioning=self.provisioning,
                                  clock=self.clock, ids=self.ids)

        return self._once("administration", build)


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
