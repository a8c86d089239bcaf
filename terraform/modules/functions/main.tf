# The functions: one service account each with least privilege, one gen2 function each
# from its source archive, and Cloud Scheduler calling the sweep and notify with OIDC tokens.

locals {
  # public: reachable without IAM (the contract: public, or Firebase-authenticated in-app).
  # The sweep and notify are not: only the scheduler's service account may invoke them.
  # uses_store: reads and writes Firestore; uses_redis: holds seats in Memorystore (it gets
  # the REDIS_* variables and may read the AUTH string and CA secrets; no other function may).
  # signs: signs with the lease root (lease tokens; admin: usage statements); warm: kept at
  # min_instances_signing instances (the tools' hot path; admin signs too rarely to need it).
  # sends_mail: sends e-mail notifications (admin: a test event; notify): it gets the SMTP_*
  # variables and may read the SMTP password secret; no other function may.
  functions = {
    acquire   = { memory = "512M", signs = true, warm = true, public = true, timeout = 30, uses_store = true, uses_redis = true, sends_mail = false }
    heartbeat = { memory = "512M", signs = true, warm = true, public = true, timeout = 30, uses_store = true, uses_redis = true, sends_mail = false }
    borrow    = { memory = "512M", signs = true, warm = true, public = true, timeout = 30, uses_store = true, uses_redis = true, sends_mail = false }
    release   = { memory = "512M", signs = false, warm = false, public = true, timeout = 30, uses_store = true, uses_redis = true, sends_mail = false }
    validate  = { memory = "512M", signs = false, warm = false, public = true, timeout = 30, uses_store = true, uses_redis = true, sends_mail = false }
    admin     = { memory = "512M", signs = true, warm = false, public = true, timeout = 60, uses_store = true, uses_redis = true, sends_mail = true }
    health    = { memory = "256M", signs = false, warm = false, public = true, timeout = 30, uses_store = true, uses_redis = true, sends_mail = false }
    jwks      = { memory = "256M", signs = false, warm = false, public = true, timeout = 30, uses_store = false, uses_redis = false, sends_mail = false }
    sweep     = { memory = "512M", signs = false, warm = false, public = false, timeout = 60, uses_store = true, uses_redis = true, sends_mail = false }
    notify    = { memory = "512M", signs = false, warm = false, public = false, timeout = 60, uses_store = true, uses_redis = false, sends_mail = true }
    console   = { memory = "256M", signs = false, warm = false, public = true, timeout = 30, uses_store = false, uses_redis = false, sends_mail = false }
  }
  redis_users  = { for name, fn in local.functions : name => fn if fn.uses_redis }
  url_template = "https://${var.region}-${var.project_id}.cloudfunctions.net/${var.environment}-{name}"
  # The sweep is internal-only. Cloud Run counts Cloud Scheduler as internal traffic only
  # on the service's own run.app URL (the cloudfunctions.net URL goes through a front end
  # that makes it external), and accepts an ID token whose audience is that URL. The
  # deterministic form, https://<service>-<project number>.<region>.run.app, is known
  # before the function exists, so the function can be told its own audience.
  sweep_url  = "https://${var.environment}-sweep-${data.google_project.this.number}.${var.region}.run.app"
  notify_url = "https://${var.environment}-notify-${data.google_project.this.number}.${var.region}.run.app"
  # IAM names secrets by project number; the API takes either form.
  webhook_secret_prefix = "projects/${data.google_project.this.number}/secrets/${var.environment}-webhook-"

  # Plain environment variables; none holds a secret.
  environment = {
    GOOGLE_CLOUD_PROJECT = var.project_id
    LEASE_ROOT_KMS_KEY   = var.kms_key_id
    GRPC_VERBOSITY       = "ERROR"
    # functions-framework's gunicorn runs THREADS threads (default: 4 per CPU); Cloud Run
    # sends up to max_instance_request_concurrency requests at once: one thread each.
    THREADS                   = tostring(var.concurrency)
    TRUSTED_PROXY_HOPS        = "1" # Google's front end appends the caller's address
    SWEEP_AUDIENCE            = local.sweep_url
    NOTIFY_AUDIENCE           = local.notify_url
    SCHEDULER_SERVICE_ACCOUNT = google_service_account.scheduler.email
    # The sweep and notify are IAM-protected: Cloud Run checks the scheduler's token and
    # hands it on with its signature removed (shared/auth/scheduler_oidc.py).
    SCHEDULER_TRUST_PLATFORM_AUTH = "1"
    SWEEP_BUDGET_S                = "45"
    NOTIFY_TOPIC                  = google_pubsub_topic.events.id
    NOTIFY_SUBSCRIPTION           = google_pubsub_subscription.webhooks.id
    NOTIFY_BUDGET_S               = "45" # then at most one delivery's 10 s before the 60 s timeout
    # Webhook endpoints' signing secrets: each is this and the endpoint's id (shared/webhook_secrets.py).
    WEBHOOK_SECRET_PREFIX = local.webhook_secret_prefix
    USAGE_RETENTION_DAYS  = tostring(var.usage_retention_days)
    # The admin console (functions/console): its own URL, where it finds the functions (the
    # same origin: no CORS), and the Firebase web API key its page signs in with (public).
    CONSOLE_URL                = "${replace(local.url_template, "{name}", "console")}/"
    CONSOLE_API_URL            = local.url_template
    CONSOLE_FIREBASE_API_KEY   = var.console_firebase_api_key
    RATE_LIMIT_IP              = var.rate_limits.per_ip
    RATE_LIMIT_USER            = var.rate_limits.per_user
    RATE_LIMIT_MACHINE_KEY     = var.rate_limits.per_machine_key
    RATE_LIMIT_LICENSE_ACQUIRE = var.rate_limits.per_license_acquire
  }
  # Only for uses_redis functions: where Memorystore is, and the names of the secrets the
  # code reads at start (and again after an AUTH failure) for its AUTH string and CA.
  redis_environment = {
    REDIS_URL         = var.redis_url
    REDIS_AUTH_SECRET = var.redis_auth_secret
    REDIS_CA_SECRET   = var.redis_ca_secret
    # The instance's own CA is the trust anchor; whether its certificate also names the
    # IP in REDIS_URL is confirmed on staging before this becomes "1" (docs/operations.md).
    REDIS_TLS_CHECK_HOSTNAME = "0"
    # A grant waits for the replica's acknowledgement (README, "What a Redis loss does").
    REDIS_WAIT_REPLICAS = tostring(var.redis_wait_replicas)
  }
  # Only for sends_mail functions: the operator's SMTP relay for e-mail notifications
  # (mailto: endpoints; shared/smtp_mail.py). smtp_host "" (the default): no e-mail is sent.
  mail_environment = {
    SMTP_HOST            = var.smtp_host
    SMTP_PORT            = tostring(var.smtp_port)
    SMTP_STARTTLS        = "1" # always: the password and the notifications never cross in plaintext
    SMTP_USERNAME        = var.smtp_username
    SMTP_PASSWORD_SECRET = google_secret_manager_secret.smtp_password.id
    MAIL_FROM            = var.mail_from
  }
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_service_account" "function" {
  for_each     = local.functions
  account_id   = "${var.environment}-${each.key}"
  display_name = "License server ${each.key} (${var.environment})"
}

# Builds the functions' images (Cloud Functions runs Cloud Build with this account):
# it reads the source archive, writes the image and its build logs, and nothing else.
# The project's default build identity may lack these on new projects (and has far more
# on old ones).
resource "google_service_account" "build" {
  account_id   = "${var.environment}-function-build"
  display_name = "Builds the license server's functions (${var.environment})"
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = var.source_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# The deployer (modules/delivery) deploys each function as its account, the builds as the
# build account and the sweep's job as the scheduler's: it may act as these, no others.
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = merge(
    { for name, account in google_service_account.function : name => account.name },
    { build = google_service_account.build.name, scheduler = google_service_account.scheduler.name },
  )
  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${var.deployer_email}"
}

# Notifications (shared/domain/notifications.py): the sweep publishes what is recorded for
# administrators to this topic (shared/licensing/notification_outbox.py); the notify
# function pulls them from the webhooks subscription (shared/licensing/webhook_dispatch.py);
# a message it cannot take after max_delivery_attempts ends in the dead-letter topic.
resource "google_pubsub_topic" "events" {
  #checkov:skip=CKV_GCP_83:Google encrypts messages at rest; they hold license ids, uids and settings already in Firestore under the same Google-managed encryption, so a customer-managed key adds key operations, not protection.
  name                       = "${var.environment}-license-events"
  message_retention_duration = "604800s" # a week: a subscription made later can seek back to them
}

resource "google_pubsub_topic" "events_dead_letter" {
  #checkov:skip=CKV_GCP_83:As the events topic: the same messages, Google-managed encryption at rest.
  name                       = "${var.environment}-license-events-dead-letter"
  message_retention_duration = "604800s"
}

resource "google_pubsub_topic_iam_member" "sweep_publishes" {
  topic  = google_pubsub_topic.events.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.function["sweep"].email}"
}

# Pulled by notify every minute. A message is acknowledged once its deliveries are recorded
# in Firestore; one notify cannot read is handed back at once, one whose recording failed
# comes back after the ack deadline; after 5 deliveries either goes to the dead letters.
resource "google_pubsub_subscription" "webhooks" {
  name                       = "${var.environment}-license-events-webhooks"
  topic                      = google_pubsub_topic.events.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = "" # never expires, however long notify is stopped
  }
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.events_dead_letter.id
    max_delivery_attempts = 5
  }
  depends_on = [google_pubsub_topic_iam_member.dead_letter_forwarding]
}

# Where an operator reads what was dead-lettered (gcloud pubsub subscriptions pull).
resource "google_pubsub_subscription" "dead_letters" {
  name                       = "${var.environment}-license-events-dead-letter"
  topic                      = google_pubsub_topic.events_dead_letter.id
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription_iam_member" "notify_consumes" {
  subscription = google_pubsub_subscription.webhooks.id
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.function["notify"].email}"
}

# Dead-lettering is done by Pub/Sub's service agent: it publishes to the dead-letter topic
# and acknowledges on the source subscription, and needs both grants to do so.
resource "google_pubsub_topic_iam_member" "dead_letter_forwarding" {
  topic  = google_pubsub_topic.events_dead_letter.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_subscription_iam_member" "dead_letter_acknowledging" {
  subscription = google_pubsub_subscription.webhooks.id
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.environment}-sweep-scheduler"
  display_name = "Calls the license server's sweep and notify (${var.environment})"
}

# Lease-token roots: exactly the calls shared/tokens/kms_root.py makes on the key. Every
# instance lists the ENABLED versions (ListCryptoKeyVersions) and reads their public keys
# (GetPublicKey); the token-issuing functions also sign (AsymmetricSign). No predefined
# role fits: roles/cloudkms.signerVerifier and roles/cloudkms.publicKeyViewer lack
# cryptoKeyVersions.list, roles/cloudkms.viewer adds reading every key ring's metadata.
# Custom roles live in the project and are granted on the one key only.
resource "google_project_iam_custom_role" "lease_root_signer" {
  role_id     = "${var.environment}LeaseRootSigner"
  title       = "License server lease-root signer (${var.environment})"
  description = "Lists the lease-root key's enabled versions, reads their public keys and signs with them."
  permissions = [
    "cloudkms.cryptoKeyVersions.list",
    "cloudkms.cryptoKeyVersions.viewPublicKey",
    "cloudkms.cryptoKeyVersions.useToSign",
  ]
}

resource "google_project_iam_custom_role" "lease_root_reader" {
  role_id     = "${var.environment}LeaseRootReader"
  title       = "License server lease-root reader (${var.environment})"
  description = "Lists the lease-root key's enabled versions and reads their public keys (jwks)."
  permissions = [
    "cloudkms.cryptoKeyVersions.list",
    "cloudkms.cryptoKeyVersions.viewPublicKey",
  ]
}

resource "google_kms_crypto_key_iam_member" "signer" {
  for_each      = { for name, fn in local.functions : name => fn if fn.signs }
  crypto_key_id = var.kms_key_id
  role          = google_project_iam_custom_role.lease_root_signer.name
  member        = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_kms_crypto_key_iam_member" "public_key_reader" {
  crypto_key_id = var.kms_key_id
  role          = google_project_iam_custom_role.lease_root_reader.name
  member        = "serviceAccount:${google_service_account.function["jwks"].email}"
}

resource "google_project_iam_member" "firestore_user" {
  for_each = { for name, fn in local.functions : name => fn if fn.uses_store }
  project  = var.project_id
  role     = "roles/datastore.user"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"
}

# The admin function looks each caller's account up (disabled, revoked, re-roled admins
# lose access within a minute: shared/auth/firebase_tokens.py); nothing else reads accounts.
resource "google_project_iam_member" "admin_reads_accounts" {
  project = var.project_id
  role    = "roles/firebaseauth.viewer"
  member  = "serviceAccount:${google_service_account.function["admin"].email}"
}

# Each Redis user's own account may read the AUTH string and the CA, and nothing else may.
resource "google_secret_manager_secret_iam_member" "redis_auth" {
  for_each  = local.redis_users
  secret_id = var.redis_auth_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_secret_manager_secret_iam_member" "redis_ca" {
  for_each  = local.redis_users
  secret_id = var.redis_ca_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.key].email}"
}

# The SMTP relay's password (SMTP_PASSWORD_SECRET): Terraform makes the secret, never its
# value; the operator adds a version (docs/operations.md, "E-mail notifications"):
#   printf %s "$PASSWORD" | gcloud secrets versions add <env>-smtp-password --data-file=-
# The functions read its latest version when they send mail, and again when the relay
# refuses it (so a new version takes effect without a deploy).
resource "google_secret_manager_secret" "smtp_password" {
  secret_id = "${var.environment}-smtp-password"
  replication {
    auto {}
  }
  lifecycle {
    precondition {
      condition     = var.smtp_host == "" || var.mail_from != ""
      error_message = "mail_from (the notification e-mails' sender) is required with smtp_host."
    }
  }
}

# Only the functions that send mail (admin's test events, notify) may read it.
resource "google_secret_manager_secret_iam_member" "smtp_password" {
  for_each  = { for name, fn in local.functions : name => fn if fn.sends_mail }
  secret_id = google_secret_manager_secret.smtp_password.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.key].email}"
}

# Terraform refreshes the Redis secrets' versions by reading them: the deployer's functions-only
# apply depends on them, so it may read both (it is the AUTH string's only reader besides
# the Redis users).
resource "google_secret_manager_secret_iam_member" "deployer_refreshes_redis_secrets" {
  for_each  = { auth = var.redis_auth_secret, ca = var.redis_ca_secret }
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${var.deployer_email}"
}

# The secret versions the functions read (modules/redis outputs), as one resource the
# functions depend on: the names in REDIS_AUTH_SECRET / REDIS_CA_SECRET exist before a
# version does, so depending on them alone would not order a deploy from zero.
resource "terraform_data" "redis_secret_versions" {
  input = [var.redis_auth_secret_version, var.redis_ca_secret_version]
}

resource "google_cloudfunctions2_function" "fn" {
  #checkov:skip=CKV_GCP_124:The user-facing functions are called by licensed tools from anywhere on the internet (openapi.yaml); callers are authenticated in-app (Firebase ID tokens) and rate-limited in-app. sweep and notify alone are internal-only.
  for_each = local.functions
  name     = "${var.environment}-${each.key}"
  location = var.region

  build_config {
    runtime         = "python311"
    entry_point     = each.key
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = var.source_bucket
        object = var.function_sources[each.key]
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.function[each.key].email
    available_memory                 = each.value.memory
    available_cpu                    = "1"
    timeout_seconds                  = each.value.timeout
    min_instance_count               = each.value.warm ? var.min_instances_signing : 0
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = var.concurrency
    # Cloud Scheduler counts as internal traffic for Cloud Run: sweep and notify need no public ingress.
    ingress_settings              = each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    vpc_connector                 = var.vpc_connector_id
    vpc_connector_egress_settings = "PRIVATE_RANGES_ONLY"
    # The REDIS_* variables only where uses_redis (a filter, not a conditional: `? map : {}`
    # has inconsistent types). var.redis_auth_secret and var.redis_ca_secret are read through
    # the secrets' versions (modules/redis outputs), and the accessor grants are in depends_on:
    # no function starts before both secrets have a version it may read.
    # Likewise the SMTP_* variables and MAIL_FROM only where sends_mail.
    environment_variables = merge(local.environment, { for key, value in local.redis_environment : key => value if each.value.uses_redis }, { for key, value in local.mail_environment : key => value if each.value.sends_mail })
  }
  # Started only once every grant it relies on exists, and both Redis secrets have a
  # version: a function that started earlier would answer 503 until they did.
  depends_on = [
    terraform_data.redis_secret_versions,
    google_secret_manager_secret_iam_member.redis_auth,
    google_secret_manager_secret_iam_member.redis_ca,
    google_secret_manager_secret_iam_member.smtp_password,
    google_kms_crypto_key_iam_member.signer,
    google_kms_crypto_key_iam_member.public_key_reader,
    google_project_iam_member.firestore_user,
    google_project_iam_member.admin_reads_accounts,
    google_project_iam_member.admin_webhook_secrets,
    google_project_iam_member.notify_reads_webhook_secrets,
    google_pubsub_subscription_iam_member.notify_consumes,
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_reads_sources,
  ]
}

resource "google_cloud_run_service_iam_member" "public_invoker" {
  #checkov:skip=CKV_GCP_102:The contract makes health and jwks public and the seat/admin functions authenticate their callers themselves with Firebase ID tokens; IAM-gating them would make every licensed tool hold Google credentials. sweep and notify are not public (scheduler account only).
  for_each = { for name, fn in local.functions : name => fn if fn.public }
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_service_iam_member" "scheduler_invoker" {
  for_each = { for name, fn in local.functions : name => fn if !fn.public }
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_cloud_scheduler_job" "sweep" {
  name             = "${var.environment}-license-sweep"
  region           = var.region
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "90s"
  retry_config {
    retry_count = 0 # the next minute's run resumes whatever this one left
  }
  http_target {
    http_method = "POST"
    uri         = local.sweep_url
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.sweep_url
    }
  }
}

# The daily expiry scan (shared/licensing/expiry_scan.py): warnings 30, 7 and 1 days before a
# license expires, and its expiry, recorded once each; the sweep publishes them. Same
# function, account and audience as the sweep; another path.
resource "google_cloud_scheduler_job" "expiry" {
  name             = "${var.environment}-license-expiry"
  region           = var.region
  schedule         = "0 6 * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "300s"
  retry_config {
    retry_count          = 3 # each record is once only: a retry repeats nothing
    min_backoff_duration = "60s"
  }
  http_target {
    http_method = "POST"
    uri         = "${local.sweep_url}/expiry"
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.sweep_url
    }
  }
}

# Webhook delivery: notify takes new notifications and makes the attempts that are due
# (shared/licensing/webhook_dispatch.py). Every minute; a run stops at NOTIFY_BUDGET_S and
# the next goes on, so a missed run delays, never loses.
resource "google_cloud_scheduler_job" "notify" {
  name             = "${var.environment}-license-notify"
  region           = var.region
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "90s"
  retry_config {
    retry_count = 0 # the next minute's run goes on
  }
  http_target {
    http_method = "POST"
    uri         = local.notify_url
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.notify_url
    }
  }
}

# The admin function makes, rotates, reads (to send a test delivery) and deletes webhook
# endpoints' signing secrets, and only those: a custom role with just those calls, granted on the project (a secret that does not
# exist yet has nowhere else to be granted on) under a condition on the secrets' names.
resource "google_project_iam_custom_role" "webhook_secrets" {
  role_id     = "${var.environment}WebhookSecrets"
  title       = "License server webhook secrets (${var.environment})"
  description = "Creates webhook signing secrets, adds versions to them, reads them (a test delivery) and deletes them."
  permissions = [
    "secretmanager.secrets.create",
    "secretmanager.secrets.delete",
    "secretmanager.versions.access",
    "secretmanager.versions.add",
  ]
}

resource "google_project_iam_member" "admin_webhook_secrets" {
  project = var.project_id
  role    = google_project_iam_custom_role.webhook_secrets.name
  member  = "serviceAccount:${google_service_account.function["admin"].email}"
  condition {
    title       = "webhook secrets only"
    description = "Secrets named ${local.webhook_secret_prefix}<endpoint id>"
    expression  = "resource.name.startsWith(\"${local.webhook_secret_prefix}\")"
  }
}

# notify reads the signing secrets to sign its deliveries: reading only, under the same
# condition on the secrets' names.
resource "google_project_iam_member" "notify_reads_webhook_secrets" {
  project = var.project_id
  role    = "roles/secretmanager.secretAccessor"
  member  = "serviceAccount:${google_service_account.function["notify"].email}"
  condition {
    title       = "webhook secrets only"
    description = "Secrets named ${local.webhook_secret_prefix}<endpoint id>"
    expression  = "resource.name.startsWith(\"${local.webhook_secret_prefix}\")"
  }
}
