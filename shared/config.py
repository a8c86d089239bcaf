"""One typed settings object, read once from the environment.

In the cloud, Terraform sets these variables on each function; a secret is given by its
Secret Manager name and read by the code (shared/google_secrets.py), never passed as a
value. Locally `scripts/dev` and the test harness set them. Nothing else in the library
reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from shared.domain.email_notifications import address_problem
from shared.domain.limits import Limit


class ConfigError(ValueError):
    """A required setting is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    project_id: str
    """Google Cloud / Firebase project; `demo-*` ids are offline-only (local stack)."""
    redis_url: str | None = None
    """Memorystore's endpoint without credentials: rediss://10.0.0.3:6378/0 (TLS), or a plain
    redis://127.0.0.1:6379/0 (a password in the URL is allowed only without REDIS_AUTH_SECRET)."""
    redis_auth_secret: str | None = None
    """Secret Manager secret holding Memorystore's AUTH string (projects/P/secrets/S; its
    latest version is read, and re-read when Redis refuses it: see shared/seats/connection.py)."""
    redis_ca_secret: str | None = None
    """Secret Manager secret holding the PEM of the Memorystore instance's server CA(s)."""
    redis_tls_check_hostname: bool = True
    """REDIS_TLS_CHECK_HOSTNAME=0: over TLS, trust a server certificate that chains to the
    instance's CA without also naming REDIS_URL's host. Memorystore gives each instance a
    CA of its own, so the chain alone already says which instance answers; Terraform
    turns the name check off until staging shows the certificate names the instance's IP
    (docs/operations.md, "Confirm on staging"), since a mismatch would fail every call."""
    redis_wait_replicas: int = 0
    """Replicas that must acknowledge a grant (Redis WAIT) before it is answered: 1 on
    Memorystore STANDARD_HA, so a failover cannot lose a grant; 0 (BASIC has no replica)."""
    redis_wait_timeout_ms: int = 100
    """How long a grant waits for that acknowledgement."""
    redis_wait_fallback: str = "refuse"
    """Without the acknowledgement in time: `refuse` (roll the grant back, 503) or `grant`
    (answer anyway, logged: availability over the guarantee while a replica is down)."""
    secret_manager_endpoint: str | None = None
    """host:port of a plaintext Secret Manager gRPC endpoint (the local stand-in); None = Google."""
    lease_root_kms_key: str | None = None
    """Cloud KMS crypto key whose enabled versions root every lease token."""
    kms_endpoint: str | None = None
    """host:port of a plaintext KMS gRPC endpoint (the local stand-in); None = Google."""
    auth_emulator_host: str | None = None
    """FIREBASE_AUTH_EMULATOR_HOST (host:port), which the console's page signs in with."""
    auth_emulated: bool = False
    """True when FIREBASE_AUTH_EMULATOR_HOST is set: firebase-admin then accepts unsigned
    emulator ID tokens with any claims and no expiry check, so it is refused unless the
    project is a `demo-*` one (which Firebase keeps offline)."""
    admin_checks_accounts: bool = True
    """The admin function looks every (uncached) ID token's account up in Firebase Auth:
    disabled, revoked or re-roled administrators lose access within a minute. Always on
    against real Firebase; with emulator tokens only when ADMIN_CHECK_ACCOUNTS=1 (it needs
    the Auth emulator running, and the accounts to exist there)."""
    id_token_certs_url: str | None = None
    """Override of Google's ID-token certificate URL (tests serve their own)."""
    auth_clock_skew_s: int = 5
    token_issuer: str = "https://license.coditect.dev"
    delegation_ttl_s: int = 3600
    """Lifetime of a delegate signing key's certificate (one KMS call per renewal)."""
    default_lease_ttl_s: int = 360
    default_heartbeat_interval_s: int = 300
    license_cache_ttl_s: int = 600
    """Life of a cached license. Freshness does not depend on it (every seat script checks
    the license's generation); it bounds memory and the Firestore reads of reloading."""
    max_body_bytes: int = 64 * 1024
    jwks_max_age_s: int = 300
    rate_limit_ip: Limit = Limit(100, 300)
    """Seat functions, per client IP (generous: many tools share a corporate NAT)."""
    rate_limit_user: Limit = Limit(20, 60)
    """Seat functions, per authenticated user."""
    rate_limit_machine_key: Limit = Limit(50, 200)
    """Seat functions, per machine key (in place of the per-user limit: one key may serve a
    build farm, so its own setting)."""
    rate_limit_license_acquire: Limit = Limit(50, 200)
    """acquire, per license (a leaked key shared by a crowd)."""
    rate_limit_public_ip: Limit = Limit(20, 60)
    """health and jwks, per client IP and instance (they touch no backend)."""
    trusted_proxy_hops: int = 0
    """Proxies that append to X-Forwarded-For before us (1 on Cloud Run, 0 locally)."""
    sweep_audience: str | None = None
    """The sweep function's URL: the audience Cloud Scheduler's OIDC token must carry."""
    notify_audience: str | None = None
    """The notify function's URL: the audience of the tokens Cloud Scheduler sends it."""
    scheduler_service_account: str | None = None
    """The only identity allowed to run the sweep and notify."""
    oidc_certs_url: str | None = None
    """Override of Google's OAuth2 certificate URL (the dev stack and tests serve their own)."""
    scheduler_trust_platform_auth: bool = False
    """SCHEDULER_TRUST_PLATFORM_AUTH=1: accept a scheduler token whose signature Cloud Run removed
    after checking it (its claims are still checked: shared/auth/scheduler_oidc.py). Only
    where sweep and notify are IAM-protected Cloud Run services, as Terraform deploys them; off
    elsewhere, where such a token is a forgery anyone can write."""
    anomaly_check_interval_s: int = 300
    """The sweep evaluates conflict detection's notes at most this often (0: every run)."""
    sweep_budget_s: float = 45.0
    """A sweep stops here and resumes next run (keep below the function timeout)."""
    webhook_secret_prefix: str | None = None
    """Where webhook endpoints' signing secrets live: projects/P/secrets/<env>-webhook- (each
    endpoint's secret is that and its id). Unset: webhook endpoints cannot be made (503)."""
    webhook_allow_private: bool = False
    """WEBHOOK_ALLOW_PRIVATE=1: webhook URLs may be http and name loopback or private
    addresses (the local stack's receivers). Refused outside a demo-* project."""
    smtp_host: str | None = None
    """The SMTP relay e-mail notifications go through (mailto: endpoints: shared/smtp_mail.py);
    unset: no e-mail is sent, and e-mail endpoints cannot be made (400)."""
    smtp_port: int = 587
    """The relay's submission port (STARTTLS)."""
    smtp_starttls: bool = True
    """SMTP_STARTTLS=0: talk to the relay without TLS (and so without AUTH). Refused outside a
    demo-* project: credentials and notifications never cross in plaintext."""
    smtp_username: str | None = None
    """The relay account (AUTH, only after STARTTLS); unset: no AUTH."""
    smtp_password_secret: str | None = None
    """Secret Manager secret holding the relay account's password (projects/P/secrets/S; its
    latest version, read when needed, kept five minutes, read again when the relay refuses it)."""
    mail_from: str | None = None
    """The sender of the notification e-mails (From and the envelope); required with SMTP_HOST."""
    smtp_ca_file: str | None = None
    """A PEM file of the CA(s) the relay's certificate must chain to instead of the system's
    (the local stack's own CA)."""
    notify_topic: str | None = None
    """Pub/Sub topic (projects/P/topics/T) the sweep publishes notifications to; unset: none
    is published (they wait, recorded, until one is set)."""
    notify_subscription: str | None = None
    """The pull subscription (projects/P/subscriptions/S) on NOTIFY_TOPIC the notify function
    takes notifications from for webhook delivery; unset: it takes none."""
    notify_pull_wait_s: float = 5.0
    """How long a notify run waits for notifications when none are waiting (a pull's deadline;
    Pub/Sub answers at once when some are)."""
    notify_budget_s: float = 45.0
    """A notify run starts no delivery after this (keep below the function timeout less one
    delivery's timeout); the next run goes on."""
    usage_retention_days: int = 400
    """How long the usage history keeps each hour; older hours are rolled up into their
    day (its totals and per-user figures are kept for good)."""
    usage_checkpoint_shards: int = 1
    """Documents the sweep spreads each hour's counter checkpoint over (one write each per
    sweep): one holds about 3,000 licenses with refusals in an hour (shared/store/usage_store.py)."""
    usage_close_after_s: int = 120
    """An hour of usage is closed (made final) by the first sweep this long after it ends,
    so that every count of it has been taken from Redis."""
    redis_timeout_s: float = 2.0
    firestore_timeout_s: float = 10.0

    console_url: str | None = None
    """The console's own URL, ending in / (Terraform: the console function's); unset: the
    URL it was asked at (the local stack, where it is served at <base>/console/)."""
    console_api_url: str = "../{name}"
    """Where the console's page finds the functions: a template with {name}, absolute or
    relative to the console's URL (the local stack serves every function at /<name>)."""
    console_firebase_api_key: str | None = None
    """The Firebase web API key the console's page signs in with (public by design: it only
    names the project to Firebase Auth). Unset: the Auth emulator's (the local stack)."""
    console_auth_domain: str | None = None
    """Firebase Auth's domain for Google sign-in (default <project>.firebaseapp.com)."""

    def scheduler_audience(self, function: str) -> str:
        """The audience of the Cloud Scheduler tokens `function` accepts: its own URL."""
        audiences = {"sweep": "sweep_audience", "notify": "notify_audience"}
        if function not in audiences:
            raise ConfigError(f"{function} is not called by Cloud Scheduler")
        return self.require(audiences[function])

    def require(self, name: str) -> str:
        """A setting a backend cannot run without (functions that never touch it need not set it)."""
        value = getattr(self, name)
        if not value:
            raise ConfigError(f"setting {name} is required (environment variable {name.upper()})")
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Each setting from the environment variable of its name in upper case (a few keep
        Google's or older names), defaulting to the field's default declared above."""
        env = os.environ if env is None else env
        defaults: dict[str, Any] = {f.name: f.default for f in fields(cls)}

        def raw(name: str, variable: str | None = None) -> str:
            return env.get(variable or name.upper(), "").strip()

        def text(name: str, variable: str | None = None) -> Any:
            return raw(name, variable) or defaults[name]

        def switch(name: str) -> str:
            """A 0/1 setting as given ('' when unset)."""
            value = raw(name)
            if value not in ("", "0", "1"):
                raise ConfigError(f"{name.upper()} must be 0 or 1, got {value!r}")
            return value

        def number(name: str, kind: type[int] | type[float] = int) -> Any:
            value = raw(name)
            try:
                return kind(value) if value else defaults[name]
            except ValueError as exc:
                raise ConfigError(f"{name.upper()} must be {'an integer' if kind is int else 'a number'}, "
                                  f"got {value!r}") from exc

        def limit(name: str) -> Limit:
            # "<requests per second>:<burst>", or "0" to switch the limit off.
            value = raw(name)
            if not value:
                default: Limit = defaults[name]
                return default
            rate, _, burst = value.partition(":")
            try:
                per_second = float(rate)
                return Limit(per_second, int(burst) if burst else max(1, round(per_second)))
            except ValueError as exc:
                raise ConfigError(f"{name.upper()} must look like 100:300 (per second:burst) or 0, "
                                  f"got {value!r}") from exc

        project_id = env.get("GOOGLE_CLOUD_PROJECT", "").strip() or "demo-coditect"
        auth_emulated = bool(env.get("FIREBASE_AUTH_EMULATOR_HOST", "").strip())
        if auth_emulated and not project_id.startswith("demo-"):
            # firebase-admin reads the variable itself: with it set, anyone could mint an
            # owner token. Only an offline demo project may run like that.
            raise ConfigError(
                f"FIREBASE_AUTH_EMULATOR_HOST is set but project {project_id!r} is not a demo-* project: "
                "emulator ID tokens are unsigned, so this would accept forged identities; unset it"
            )
        check_accounts = switch("admin_check_accounts")
        if check_accounts == "0" and not auth_emulated:
            raise ConfigError("ADMIN_CHECK_ACCOUNTS=0 is only for emulator tokens: real administrators are checked")
        redis_url, redis_auth_secret = text("redis_url"), text("redis_auth_secret")
        if redis_url and redis_auth_secret and "@" in redis_url.split("://", 1)[-1].split("/", 1)[0]:
            raise ConfigError("REDIS_URL carries a password and REDIS_AUTH_SECRET names another: keep only the secret")
        trust_platform_auth = switch("scheduler_trust_platform_auth")
        check_hostname = switch("redis_tls_check_hostname")
        wait_fallback = text("redis_wait_fallback")
        if wait_fallback not in ("refuse", "grant"):
            raise ConfigError(f"REDIS_WAIT_FALLBACK must be refuse or grant, got {wait_fallback!r}")
        allow_private = switch("webhook_allow_private")
        if allow_private == "1" and not project_id.startswith("demo-"):
            raise ConfigError("WEBHOOK_ALLOW_PRIVATE=1 is for the local stack only: a deployed service would deliver "
                              "to private and metadata addresses (SSRF)")
        starttls = switch("smtp_starttls")
        if starttls == "0" and not project_id.startswith("demo-"):
            raise ConfigError("SMTP_STARTTLS=0 is for the local stack only: credentials and notifications would "
                              "cross in plaintext")
        smtp_host, mail_from, smtp_username = text("smtp_host"), text("mail_from"), text("smtp_username")
        if smtp_host:
            problem = "not set" if not mail_from else address_problem(mail_from)
            if problem:
                raise ConfigError(f"MAIL_FROM (the sender of notification e-mails, needed with SMTP_HOST): {problem}")
            if smtp_username and not text("smtp_password_secret"):
                raise ConfigError("SMTP_USERNAME needs SMTP_PASSWORD_SECRET (the secret holding its password)")
            if not 0 < number("smtp_port") < 65536:
                raise ConfigError(f"SMTP_PORT must be a port (1-65535), got {raw('smtp_port')!r}")
        for name in ("usage_retention_days", "usage_checkpoint_shards"):
            if number(name) < 1:
                raise ConfigError(f"{name.upper()} must be at least 1, got {raw(name)!r}")
        return cls(
            project_id=project_id,
            admin_checks_accounts=check_accounts == "1" or not auth_emulated,
            redis_url=redis_url,
            redis_auth_secret=redis_auth_secret,
            redis_ca_secret=text("redis_ca_secret"),
            redis_tls_check_hostname=check_hostname != "0",
            redis_wait_replicas=number("redis_wait_replicas"),
            redis_wait_timeout_ms=number("redis_wait_timeout_ms"),
            redis_wait_fallback=wait_fallback,
            secret_manager_endpoint=text("secret_manager_endpoint"),
            lease_root_kms_key=text("lease_root_kms_key"),
            kms_endpoint=text("kms_endpoint"),
            auth_emulated=auth_emulated,
            auth_emulator_host=env.get("FIREBASE_AUTH_EMULATOR_HOST", "").strip() or None,
            console_url=text("console_url"),
            console_api_url=text("console_api_url"),
            console_firebase_api_key=text("console_firebase_api_key"),
            console_auth_domain=text("console_auth_domain"),
            id_token_certs_url=text("id_token_certs_url"),
            auth_clock_skew_s=number("auth_clock_skew_s"),
            token_issuer=text("token_issuer", "LEASE_TOKEN_ISSUER"),
            delegation_ttl_s=number("delegation_ttl_s"),
            default_lease_ttl_s=number("default_lease_ttl_s"),
            default_heartbeat_interval_s=number("default_heartbeat_interval_s"),
            license_cache_ttl_s=number("license_cache_ttl_s"),
            max_body_bytes=number("max_body_bytes"),
            jwks_max_age_s=number("jwks_max_age_s"),
            rate_limit_ip=limit("rate_limit_ip"),
            rate_limit_user=limit("rate_limit_user"),
            rate_limit_machine_key=limit("rate_limit_machine_key"),
            rate_limit_license_acquire=limit("rate_limit_license_acquire"),
            rate_limit_public_ip=limit("rate_limit_public_ip"),
            trusted_proxy_hops=number("trusted_proxy_hops"),
            sweep_audience=text("sweep_audience"),
            notify_audience=text("notify_audience"),
            scheduler_service_account=text("scheduler_service_account"),
            oidc_certs_url=text("oidc_certs_url"),
            scheduler_trust_platform_auth=trust_platform_auth == "1",
            sweep_budget_s=number("sweep_budget_s", float),
            anomaly_check_interval_s=number("anomaly_check_interval_s"),
            notify_topic=text("notify_topic"),
            notify_subscription=text("notify_subscription"),
            notify_pull_wait_s=number("notify_pull_wait_s", float),
            notify_budget_s=number("notify_budget_s", float),
            webhook_secret_prefix=text("webhook_secret_prefix"),
            webhook_allow_private=allow_private == "1",
            smtp_host=smtp_host,
            smtp_port=number("smtp_port"),
            smtp_starttls=starttls != "0",
            smtp_username=smtp_username,
            smtp_password_secret=text("smtp_password_secret"),
            mail_from=mail_from,
            smtp_ca_file=text("smtp_ca_file"),
            usage_retention_days=number("usage_retention_days"),
            usage_close_after_s=number("usage_close_after_s"),
            usage_checkpoint_shards=number("usage_checkpoint_shards"),
            redis_timeout_s=number("redis_timeout_s", float),
            firestore_timeout_s=number("firestore_timeout_s", float),
        )
