# The functions: one service account each with least privilege, one gen2 function each
# from its source archive, and Cloud Scheduler calling the sweep with an OIDC token.

locals {
  # public: reachable without IAM (the contract: public, or Firebase-authenticated in-app).
  # The sweep is not: only the scheduler's service account may invoke it.
  # uses_store: reads and writes Firestore; uses_redis: holds seats in Memorystore (it gets
  # the REDIS_* variables and may read the AUTH string and CA secrets; no other function may).
  functions = {
    acquire   = { memory = "512M", signs = true, public = true, timeout = 30, uses_store = true, uses_redis = true }
    heartbeat = { memory = "512M", signs = true, public = true, timeout = 30, uses_store = true, uses_redis = true }
    borrow    = { memory = "512M", signs = true, public = true, timeout = 30, uses_store = true, uses_redis = true }
    release   = { memory = "512M", signs = false, public = true, timeout = 30, uses_store = true, uses_redis = true }
    validate  = { memory = "512M", signs = false, public = true, timeout = 30, uses_store = true, uses_redis = true }
    admin     = { memory = "512M", signs = false, public = true, timeout = 60, uses_store = true, uses_redis = true }
    health    = { memory = "256M", signs = false, public = true, timeout = 30, uses_store = true, uses_redis = true }
    jwks      = { memory = "256M", signs = false, public = true, timeout = 30, uses_store = false, uses_redis = false }
    sweep     = { memory = "512M", signs = false, public = false, timeout = 60, uses_store = true, uses_redis = true }
  }
  redis_users  = { for name, fn in local.functions : name => fn if fn.uses_redis }
  url_template = "https://${var.region}-${var.project_id}.cloudfunctions.net/${var.environment}-{name}"
  sweep_url    = replace(local.url_template, "{name}", "sweep")

  # Plain environment variables; none holds a secret.
  environment = {
    GOOGLE_CLOUD_PROJECT       = var.project_id
    LEASE_ROOT_KMS_KEY         = var.kms_key_id
    GRPC_VERBOSITY             = "ERROR"
    TRUSTED_PROXY_HOPS         = "1" # Google's front end appends the caller's address
    SWEEP_AUDIENCE             = local.sweep_url
    SCHEDULER_SERVICE_ACCOUNT  = google_service_account.scheduler.email
    SWEEP_BUDGET_S             = "45"
    RATE_LIMIT_IP              = var.rate_limits.per_ip
    RATE_LIMIT_USER            = var.rate_limits.per_user
    RATE_LIMIT_LICENSE_ACQUIRE = var.rate_limits.per_license_acquire
  }
  # Only for uses_redis functions: where Memorystore is, and the names of the secrets the
  # code reads at start (and again after an AUTH failure) for its AUTH string and CA.
  redis_environment = {
    REDIS_URL         = var.redis_url
    REDIS_AUTH_SECRET = var.redis_auth_secret
    REDIS_CA_SECRET   = var.redis_ca_secret
    # A grant waits for the replica's acknowledgement (README, "What a Redis loss does").
    REDIS_WAIT_REPLICAS = tostring(var.redis_wait_replicas)
  }
}

resource "google_service_account" "function" {
  for_each     = local.functions
  account_id   = "${var.environment}-${each.key}"
  display_name = "License server ${each.key} (${var.environment})"
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.environment}-sweep-scheduler"
  display_name = "Calls the license server's sweep (${var.environment})"
}

# Only the functions that issue lease tokens may sign; only jwks reads public keys.
resource "google_kms_crypto_key_iam_member" "signer" {
  for_each      = { for name, fn in local.functions : name => fn if fn.signs }
  crypto_key_id = var.kms_key_id
  role          = "roles/cloudkms.signerVerifier"
  member        = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_kms_crypto_key_iam_member" "public_key_viewer" {
  crypto_key_id = var.kms_key_id
  role          = "roles/cloudkms.publicKeyViewer"
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

resource "google_cloudfunctions2_function" "fn" {
  #checkov:skip=CKV_GCP_124:The user-facing functions are called by licensed tools from anywhere on the internet (openapi.yaml); callers are authenticated in-app (Firebase ID tokens) and rate-limited in-app. sweep alone is internal-only.
  for_each = local.functions
  name     = "${var.environment}-${each.key}"
  location = var.region

  build_config {
    runtime     = "python311"
    entry_point = each.key
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
    min_instance_count               = each.value.signs ? var.min_instances_signing : 0
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = var.concurrency
    # Cloud Scheduler counts as internal traffic for Cloud Run: the sweep needs no public ingress.
    ingress_settings              = each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    vpc_connector                 = var.vpc_connector_id
    vpc_connector_egress_settings = "PRIVATE_RANGES_ONLY"
    # The REDIS_* variables only where uses_redis (a filter, not a conditional: `? map : {}`
    # has inconsistent types). var.redis_auth_secret and var.redis_ca_secret are read through
    # the secrets' versions (modules/redis outputs), and the accessor grants are in depends_on:
    # no function starts before both secrets have a version it may read.
    environment_variables = merge(local.environment, { for key, value in local.redis_environment : key => value if each.value.uses_redis })
  }
  depends_on = [
    google_secret_manager_secret_iam_member.redis_auth,
    google_secret_manager_secret_iam_member.redis_ca,
    google_kms_crypto_key_iam_member.signer,
  ]
}

resource "google_cloud_run_service_iam_member" "public_invoker" {
  #checkov:skip=CKV_GCP_102:The contract makes health and jwks public and the seat/admin functions authenticate their callers themselves with Firebase ID tokens; IAM-gating them would make every licensed tool hold Google credentials. sweep is not public (scheduler account only).
  for_each = { for name, fn in local.functions : name => fn if fn.public }
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_service_iam_member" "sweep_invoker" {
  location = var.region
  service  = google_cloudfunctions2_function.fn["sweep"].service_config[0].service
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
