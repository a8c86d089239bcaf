"""The local stack as one object: backends, stand-ins for Google APIs, the function server.

    with LocalStack.start() as stack:        # Memorystore-like Redis, Google's Firestore and
                                             # Pub/Sub emulators, KMS and Secret Manager stand-ins
        server = stack.serve_functions(port)  # gunicorn, every function at /<name>
        stack.env                             # the settings a function process needs
        stack.components()                    # what runs, for people and tools

The functions read Redis's AUTH string and CA from the Secret Manager stand-in, as they
read Memorystore's from Secret Manager in the cloud; likewise the password of the stack's
SMTP relay (a real SMTP server, STARTTLS and AUTH required: devstack.smtp_server), which
keeps every e-mail notification it is sent (`stack.mail.received()`, and a file each).
REDIS_URL / FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST in the environment are used
instead of starting our own servers (e.g. a plain Redis 7 to check script compatibility:
then without TLS or AUTH). The notification topic (NOTIFY_TOPIC), its dead-letter topic
and the notify function's pull subscription with its dead-letter policy
(NOTIFY_SUBSCRIPTION) are created at every start, in whichever Pub/Sub emulator serves
the stack (it keeps nothing across restarts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.firestore_emulator import EmulatorFacts, FirestoreEmulator, external_emulator
from devstack.google_certs import LocalGoogleCerts
from devstack.kms_standin import KmsStandIn
from devstack.local_ca import LocalCa
from devstack.processes import free_port, refuse_busy_port, spawn, stop, wait_until
from devstack.pubsub_emulator import PubSubEmulator, PubSubFacts
from devstack.pubsub_emulator import external_emulator as external_pubsub_emulator
from devstack.redis_server import MEMORYSTORE_BLOCKED, MemorystoreLikeRedis, RedisEndpoint
from devstack.secret_manager_standin import SecretManagerStandIn
from devstack.smtp_server import LocalSmtpServer

REPO = Path(__file__).resolve().parents[2]
PROJECT_ID = "demo-coditect"
KMS_KEY = f"projects/{PROJECT_ID}/locations/global/keyRings/coditect/cryptoKeys/lease-root"
# Deployed, the audience of a scheduler-called function is its URL; locally fixed stand-ins.
SWEEP_AUDIENCE = "https://sweep.local.invalid/sweep"
NOTIFY_AUDIENCE = "https://notify.local.invalid/notify"
SCHEDULER_AUDIENCES = {"sweep": SWEEP_AUDIENCE, "notify": NOTIFY_AUDIENCE}
SCHEDULER_ACCOUNT = f"sweep-scheduler@{PROJECT_ID}.iam.gserviceaccount.com"
# The secrets Terraform creates from the Memorystore instance (terraform/modules/redis).
REDIS_AUTH_SECRET_ID = "redis-auth"
REDIS_CA_SECRET_ID = "redis-ca"
# The SMTP relay's password (Terraform makes the secret; the operator adds its version).
SMTP_PASSWORD_SECRET_ID = "smtp-password"
MAIL_FROM = "licenses@coditect.example"
# The notification topic and its dead-letter topic (terraform/modules/functions: <env>-license-events).
NOTIFY_TOPIC = f"projects/{PROJECT_ID}/topics/license-events"
NOTIFY_DEAD_LETTER_TOPIC = f"projects/{PROJECT_ID}/topics/license-events-dead-letter"
# The notify function's pull subscription, and one on the dead-letter topic so that what
# is dead-lettered can be read (terraform/modules/functions makes both, with these settings).
NOTIFY_SUBSCRIPTION = f"projects/{PROJECT_ID}/subscriptions/license-events-webhooks"
NOTIFY_DEAD_LETTER_SUBSCRIPTION = f"projects/{PROJECT_ID}/subscriptions/license-events-dead-letter"
NOTIFY_MAX_DELIVERY_ATTEMPTS = 5
NOTIFY_ACK_DEADLINE_S = 60


def create_topics(pubsub_host: str) -> None:
    """Create the notification topics and subscriptions in the Pub/Sub emulator at
    `pubsub_host` (what exists already is kept)."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

    # The client reads PUBSUB_EMULATOR_HOST when it is made (an insecure channel to it, no
    # credentials): set for that moment only, this process's environment is not the stack's.
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = pubsub_host
    try:
        publisher, subscriber = PublisherClient(), SubscriberClient()
    finally:
        if previous is None:
            del os.environ["PUBSUB_EMULATOR_HOST"]
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = previous
    with publisher, subscriber:  # closes their channels
        for topic in (NOTIFY_TOPIC, NOTIFY_DEAD_LETTER_TOPIC):
            try:
                publisher.create_topic(name=topic, timeout=30)
            except AlreadyExists:
                pass
        subscriptions = [
            {"name": NOTIFY_SUBSCRIPTION, "topic": NOTIFY_TOPIC, "ack_deadline_seconds": NOTIFY_ACK_DEADLINE_S,
             "dead_letter_policy": {"dead_letter_topic": NOTIFY_DEAD_LETTER_TOPIC,
                                    "max_delivery_attempts": NOTIFY_MAX_DELIVERY_ATTEMPTS}},
            {"name": NOTIFY_DEAD_LETTER_SUBSCRIPTION, "topic": NOTIFY_DEAD_LETTER_TOPIC},
        ]
        for subscription in subscriptions:
            try:
                subscriber.create_subscription(request=subscription, timeout=30)
            except AlreadyExists:
                pass


@dataclass
class FunctionServer:
    process: subprocess.Popen
    base_url: str
    log_path: Path | None

    def stop(self) -> None:
        stop(self.process, timeout_s=10)


@dataclass
class LocalStack:
    redis: RedisEndpoint
    redis_version: str | None  # None: an external Redis (REDIS_URL), not ours to describe
    firestore_host: str
    kms: KmsStandIn
    secret_manager: SecretManagerStandIn
    oidc: LocalGoogleCerts
    firestore_emulator: EmulatorFacts
    pubsub_host: str
    pubsub_emulator: PubSubFacts
    mail: LocalSmtpServer  # the SMTP relay: what it received, for tests and people
    project_id: str = PROJECT_ID
    redis_server: MemorystoreLikeRedis | None = None  # ours to kill or restart (tests); None: external
    firestore_server: FirestoreEmulator | None = None  # ours to freeze (tests); None: external
    pubsub_server: PubSubEmulator | None = None  # None: external (PUBSUB_EMULATOR_HOST)
    _owned: list = field(default_factory=list)

    @classmethod
    def start(cls, *, kms_algorithm: str = "EC_SIGN_P256_SHA256", data_dir: Path | None = None,
              mail_dir: Path | None = None) -> LocalStack:
        """`data_dir`: Redis and the Firestore emulator keep their data there across restarts.
        `mail_dir`: where the SMTP relay writes each message it receives (default: a temporary folder)."""
        owned: list = []
        try:
            secret_manager = SecretManagerStandIn().start()
            owned.append(secret_manager)
            redis_version: str | None = None
            redis_server: MemorystoreLikeRedis | None = None
            if os.environ.get("REDIS_URL"):
                redis = RedisEndpoint(os.environ["REDIS_URL"])
            else:
                redis_server = MemorystoreLikeRedis(data_dir=data_dir / "redis" if data_dir else None).start()
                owned.append(redis_server)
                redis, redis_version = redis_server.endpoint, redis_server.version()
                secret_manager.put(PROJECT_ID, REDIS_AUTH_SECRET_ID, redis_server.password)
                secret_manager.put(PROJECT_ID, REDIS_CA_SECRET_ID, redis_server.ca.pem)
            mail = LocalSmtpServer(ca=redis_server.ca if redis_server else LocalCa("Local stack CA"),
                                   folder=mail_dir).start()
            owned.append(mail)
            secret_manager.put(PROJECT_ID, SMTP_PASSWORD_SECRET_ID, mail.password)
            firestore_host = os.environ.get("FIRESTORE_EMULATOR_HOST")
            firestore_server: FirestoreEmulator | None = None
            firestore_facts: EmulatorFacts | None
            if firestore_host:
                firestore_facts = external_emulator(firestore_host)
            else:
                firestore_server = FirestoreEmulator(data_dir=data_dir / "firestore" if data_dir else None,
                                                     project_id=PROJECT_ID).start()
                owned.append(firestore_server)
                firestore_host, firestore_facts = firestore_server.host, firestore_server.facts
            pubsub_host = os.environ.get("PUBSUB_EMULATOR_HOST")
            pubsub_server: PubSubEmulator | None = None
            pubsub_facts: PubSubFacts | None
            if pubsub_host:
                pubsub_facts = external_pubsub_emulator(pubsub_host)
            else:
                pubsub_server = PubSubEmulator().start()
                owned.append(pubsub_server)
                pubsub_host, pubsub_facts = pubsub_server.host, pubsub_server.facts
            create_topics(pubsub_host)
            kms = KmsStandIn().start()
            owned.append(kms)
            kms.create_key(KMS_KEY, kms_algorithm)
            oidc = LocalGoogleCerts()
            owned.append(oidc)
        except BaseException:
            for resource in reversed(owned):
                resource.stop()
            raise
        assert firestore_facts is not None and pubsub_facts is not None  # the emulators' start() sets them
        return cls(redis, redis_version, firestore_host, kms, secret_manager, oidc, firestore_facts,
                   pubsub_host, pubsub_facts, mail, redis_server=redis_server, firestore_server=firestore_server,
                   pubsub_server=pubsub_server, _owned=owned)

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def components(self) -> dict[str, dict[str, object]]:
        """What serves this stack, each with a one-line "describe" (printed by ./scripts/dev,
        recorded in stack.json)."""
        if self.redis_version is None:
            redis: dict[str, object] = {"url": self.redis.url, "external": True,
                                        "describe": f"an external Redis at {self.redis.url} (REDIS_URL)"}
        else:
            redis = {"version": self.redis_version, "url": self.redis.url, "tls": True, "auth": True,
                     "blocked_commands": list(MEMORYSTORE_BLOCKED),
                     "describe": f"Redis {self.redis_version} as Memorystore runs it: TLS only (a CA made for "
                                 "this stack, certificate for 127.0.0.1), AUTH, its blocked commands renamed away"}
        return {
            "firestore": {**self.firestore_emulator.as_dict(), "describe": self.firestore_emulator.describe()},
            "pubsub": {**self.pubsub_emulator.as_dict(), "host": self.pubsub_host, "topic": NOTIFY_TOPIC,
                       "subscription": NOTIFY_SUBSCRIPTION, "dead_letter_topic": NOTIFY_DEAD_LETTER_TOPIC,
                       "dead_letter_subscription": NOTIFY_DEAD_LETTER_SUBSCRIPTION,
                       "describe": self.pubsub_emulator.describe()},
            "redis": redis,
            "kms": {"endpoint": self.kms.address,
                    "describe": "Cloud KMS: a gRPC stand-in for google-cloud-kms (scripts/devstack/kms_standin.py)"},
            "secret_manager": {
                "endpoint": self.secret_manager.address,
                "describe": "Secret Manager: a gRPC stand-in for google-cloud-secret-manager, holding Redis's "
                            "AUTH string and CA and the SMTP password (scripts/devstack/secret_manager_standin.py)"},
            "smtp": {"host": self.mail.host, "port": self.mail.port, "mail_folder": str(self.mail.folder),
                     "describe": self.mail.describe()},
        }

    def scheduler_token(self, function: str = "sweep", **overrides) -> str:
        """An OIDC token as Cloud Scheduler would send to `function` (sweep or notify)."""
        return self.oidc.scheduler_token(audience=SCHEDULER_AUDIENCES[function], email=SCHEDULER_ACCOUNT,
                                         **overrides)

    @property
    def env(self) -> dict[str, str]:
        """Settings for a process running the functions against this stack."""
        return {
            "GOOGLE_CLOUD_PROJECT": self.project_id,
            "REDIS_URL": self.redis.url,
            **({"REDIS_AUTH_SECRET": f"projects/{self.project_id}/secrets/{REDIS_AUTH_SECRET_ID}",
                "REDIS_CA_SECRET": f"projects/{self.project_id}/secrets/{REDIS_CA_SECRET_ID}"}
               if self.redis.password else {}),
            "SECRET_MANAGER_ENDPOINT": self.secret_manager.address,
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "NOTIFY_TOPIC": NOTIFY_TOPIC,
            "NOTIFY_SUBSCRIPTION": NOTIFY_SUBSCRIPTION,
            "NOTIFY_PULL_WAIT_S": "1",  # the emulator answers at once when anything waits
            # webhook endpoints' secrets, in the Secret Manager stand-in; receivers on loopback
            "WEBHOOK_SECRET_PREFIX": f"projects/{self.project_id}/secrets/webhook-",
            "WEBHOOK_ALLOW_PRIVATE": "1",
            # e-mail notifications through the stack's SMTP relay, as through an operator's:
            # STARTTLS verified (against the stack's CA), AUTH with the password from Secret Manager
            "SMTP_HOST": self.mail.host,
            "SMTP_PORT": str(self.mail.port),
            "SMTP_STARTTLS": "1",
            "SMTP_USERNAME": self.mail.username,
            "SMTP_PASSWORD_SECRET": f"projects/{self.project_id}/secrets/{SMTP_PASSWORD_SECRET_ID}",
            "SMTP_CA_FILE": str(self.mail.ca_file),
            "MAIL_FROM": MAIL_FROM,
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",  # emulator-token mode; nothing need listen
            "LEASE_ROOT_KMS_KEY": KMS_KEY,
            "KMS_ENDPOINT": self.kms.address,
            # Every local caller is 127.0.0.1, so per-IP limits would throttle the whole
            # machine as one client: off. Per-user and per-license limits stay on (the
            # limiter runs on every request) but high enough for tests and scripts/bench.
            "RATE_LIMIT_IP": "0",
            "RATE_LIMIT_PUBLIC_IP": "0",
            "RATE_LIMIT_USER": "2000:4000",
            "RATE_LIMIT_MACHINE_KEY": "2000:4000",
            "RATE_LIMIT_LICENSE_ACQUIRE": "5000:10000",
            "OIDC_CERTS_URL": self.oidc.url,
            "SWEEP_AUDIENCE": SWEEP_AUDIENCE,
            "NOTIFY_AUDIENCE": NOTIFY_AUDIENCE,
            "SCHEDULER_SERVICE_ACCOUNT": SCHEDULER_ACCOUNT,
        }

    def apply_env(self) -> None:
        """Point this process's own clients (tests, seeding) at the stack."""
        os.environ.update(self.env)

    def serve_functions(self, port: int | None = None, *, workers: int = 2, threads: int = 8,
                        extra_env: dict[str, str] | None = None, unset_env: tuple[str, ...] = (),
                        log_path: Path | None = None) -> FunctionServer:
        """Every function on http://127.0.0.1:<port>/<name> through gunicorn (not the debug server).

        `unset_env` removes settings, e.g. FIREBASE_AUTH_EMULATOR_HOST to run the
        production ID-token path.

        Raises:
            devstack.processes.PortInUse: something already listens on the port. Never shared (no
                SO_REUSEPORT): two stacks on one port would each get a share of its
                connections, each answering with its own data.
        """
        port = port or free_port()
        refuse_busy_port(port, what="the function server")
        env = {**os.environ, **self.env, **(extra_env or {})}
        for name in unset_env:
            env.pop(name, None)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "scripts"), env.get("PYTHONPATH", "")])
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        process = spawn(
            [sys.executable, "-m", "gunicorn", "devstack.wsgi:app",
             "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
             "--worker-class", "gthread", "--graceful-timeout", "5", "--timeout", "60",
             "--keep-alive", "30", "--log-level", "warning"],
            env=env, stdout=log, stderr=log, cwd=str(REPO),
        )
        base_url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base_url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(healthy, timeout_s=60, what="the function server", process=process)
        except BaseException:
            stop(process)
            if process.returncode not in (None, 0, -15):
                # taken between the check above and gunicorn's bind (gunicorn retries, then exits 1)?
                refuse_busy_port(port, what="the function server")
            raise
        return FunctionServer(process, base_url, log_path)

    def stop(self) -> None:
        for resource in reversed(self._owned):
            resource.stop()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
