# The license server's infrastructure in one root module. A later change splits it
# into reusable modules with staging/production environments.

locals {
  name = "coditect-${var.environment}"
  # public: reachable without IAM (API.md: public, or Firebase-authenticated in-app).
  # sweep is not: only the scheduler's service account may invoke it.
  functions = {
    acquire   = { entry_point = "acquire", memory = "512M", signs = true, public = true, timeout = 30 }
    heartbeat = { entry_point = "heartbeat", memory = "512M", signs = true, public = true, timeout = 30 }
    release   = { entry_point = "release", memory = "512M", signs = false, public = true, timeout = 30 }
    validate  = { entry_point = "validate", memory = "512M", signs = false, public = true, timeout = 30 }
    health    = { entry_point = "health", memory = "256M", signs = false, public = true, timeout = 30 }
    jwks      = { entry_point = "jwks", memory = "256M", signs = false, public = true, timeout = 30 }
    sweep     = { entry_point = "sweep", memory = "512M", signs = false, public = false, timeout = 60 }
    admin     = { entry_point = "admin", memory = "512M", signs = false, public = true, timeout = 60 }
  }
  # gen2 functions' URLs are known in advance: the sweep's OIDC audience needs no cycle.
  sweep_url = "https://${var.region}-${var.project_id}.cloudfunctions.net/${var.environment}-sweep"
}

resource "google_project_service" "apis" {
  for_each = toset([
    "cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
    "firestore.googleapis.com", "redis.googleapis.com", "cloudkms.googleapis.com",
    "secretmanager.googleapis.com", "vpcaccess.googleapis.com", "artifactregistry.googleapis.com",
    "cloudscheduler.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

# --- network: functions reach Memorystore over a private VPC -------------------
resource "google_compute_network" "vpc" {
  name                    = "${local.name}-vpc"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "functions" {
  name                     = "${local.name}-functions"
  network                  = google_compute_network.vpc.id
  region                   = var.region
  ip_cidr_range            = "10.8.0.0/28"
  private_ip_google_access = true
  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Nothing may open a connection into the VPC; functions only reach out (to Memorystore).
resource "google_compute_firewall" "deny_all_ingress" {
  name      = "${local.name}-deny-all-ingress"
  network   = google_compute_network.vpc.id
  direction = "INGRESS"
  priority  = 65534
  deny {
    protocol = "all"
  }
  source_ranges = ["0.0.0.0/0"]
  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_vpc_access_connector" "functions" {
  name   = "${var.environment}-conn"
  region = var.region
  subnet {
    name = google_compute_subnetwork.functions.name
  }
  min_instances = 2
  max_instances = 3
  depends_on    = [google_project_service.apis]
}

# --- Redis: who holds a seat now ------------------------------------------------
resource "google_redis_instance" "seats" {
  name                    = "${local.name}-seats"
  tier                    = var.redis_tier
  memory_size_gb          = var.redis_memory_gb
  region                  = var.region
  redis_version           = "REDIS_7_0"
  authorized_network      = google_compute_network.vpc.id
  connect_mode            = "PRIVATE_SERVICE_ACCESS"
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"
  depends_on              = [google_project_service.apis]
}

resource "google_secret_manager_secret" "redis_url" {
  secret_id = "${local.name}-redis-url"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret      = google_secret_manager_secret.redis_url.id
  secret_data = "rediss://:${google_redis_instance.seats.auth_string}@${google_redis_instance.seats.host}:${google_redis_instance.seats.port}/0"
}

# --- Firestore: the durable record ----------------------------------------------
resource "google_firestore_database" "default" {
  name        = "(default)"
  location_id = var.region
  type        = "FIRESTORE_NATIVE"
  depends_on  = [google_project_service.apis]
}

# Reconciliation lists a license's active sessions (license_id ==, status ==).
resource "google_firestore_index" "active_sessions" {
  database   = google_firestore_database.default.name
  collection = "sessions"
  fields {
    field_path = "license_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
}

# Recovery after Redis loss pages through every active session (status ==, session_id >).
resource "google_firestore_index" "active_sessions_by_id" {
  database   = google_firestore_database.default.name
  collection = "sessions"
  fields {
    field_path = "status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "session_id"
    order      = "ASCENDING"
  }
}

# The admin function: licenses of a tenant by id; the audit log newest first, per
# tenant and per license.
resource "google_firestore_index" "licenses_by_tenant" {
  database   = google_firestore_database.default.name
  collection = "licenses"
  fields {
    field_path = "tenant_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "license_id"
    order      = "ASCENDING"
  }
}

resource "google_firestore_index" "events_by_tenant" {
  database   = google_firestore_database.default.name
  collection = "events"
  fields {
    field_path = "tenant_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "at"
    order      = "DESCENDING"
  }
}

resource "google_firestore_index" "events_by_license" {
  database   = google_firestore_database.default.name
  collection = "events"
  fields {
    field_path = "tenant_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "license_id"
    order      = "ASCENDING"
  }
  fields {
    field_path = "at"
    order      = "DESCENDING"
  }
}

# --- KMS: the root of every lease token --------------------------------------------
resource "google_kms_key_ring" "tokens" {
  name       = "${local.name}-tokens"
  location   = var.region
  depends_on = [google_project_service.apis]
}

resource "google_kms_crypto_key" "lease_root" {
  name     = "lease-root"
  key_ring = google_kms_key_ring.tokens.id
  purpose  = "ASYMMETRIC_SIGN"
  version_template {
    algorithm        = var.kms_algorithm
    protection_level = "HSM"
  }
  lifecycle {
    prevent_destroy = true
  }
}

# --- one service account per function, least privilege ---------------------------------
resource "google_service_account" "function" {
  for_each     = local.functions
  account_id   = "${var.environment}-${each.key}"
  display_name = "License server ${each.key} (${var.environment})"
}

resource "google_kms_crypto_key_iam_member" "signer" {
  for_each      = { for name, fn in local.functions : name => fn if fn.signs }
  crypto_key_id = google_kms_crypto_key.lease_root.id
  role          = "roles/cloudkms.signerVerifier"
  member        = "serviceAccount:${google_service_account.function[each.key].email}"
}

# jwks publishes the root's public keys; no other function reads KMS without signing.
resource "google_kms_crypto_key_iam_member" "public_key_viewer" {
  crypto_key_id = google_kms_crypto_key.lease_root.id
  role          = "roles/cloudkms.publicKeyViewer"
  member        = "serviceAccount:${google_service_account.function["jwks"].email}"
}

resource "google_project_iam_member" "firestore_user" {
  for_each = { for name, fn in local.functions : name => fn if name != "jwks" }
  project  = var.project_id
  role     = "roles/datastore.user"
  member   = "serviceAccount:${google_service_account.function[each.key].email}"
}

resource "google_secret_manager_secret_iam_member" "redis_url" {
  for_each  = { for name, fn in local.functions : name => fn if name != "jwks" }
  secret_id = google_secret_manager_secret.redis_url.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.key].email}"
}

# --- the functions -----------------------------------------------------------------------
resource "google_cloudfunctions2_function" "fn" {
  #checkov:skip=CKV_GCP_124:The user-facing functions are called by licensed tools from anywhere on the internet (API.md); callers are authenticated in-app (Firebase ID tokens) and rate-limited in-app. sweep alone is internal-only.
  for_each = local.functions
  name     = "${var.environment}-${each.key}"
  location = var.region

  build_config {
    runtime     = "python311"
    entry_point = each.value.entry_point
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
    timeout_seconds                  = each.value.timeout
    min_instance_count               = var.environment == "production" && each.value.signs ? 1 : 0
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = 16
    available_cpu                    = "1"
    # Cloud Scheduler counts as internal traffic for Cloud Run: the sweep needs no public ingress.
    ingress_settings                 = each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    vpc_connector                    = google_vpc_access_connector.functions.id
    vpc_connector_egress_settings    = "PRIVATE_RANGES_ONLY"
    environment_variables = {
      GOOGLE_CLOUD_PROJECT = var.project_id
      LEASE_ROOT_KMS_KEY   = google_kms_crypto_key.lease_root.id
      GRPC_VERBOSITY       = "ERROR"
      # Google's front end appends the caller's address to X-Forwarded-For.
      TRUSTED_PROXY_HOPS        = "1"
      SWEEP_AUDIENCE            = local.sweep_url
      SCHEDULER_SERVICE_ACCOUNT = google_service_account.scheduler.email
      SWEEP_BUDGET_S            = "45"
    }
    dynamic "secret_environment_variables" {
      for_each = each.key == "jwks" ? [] : [1]
      content {
        key        = "REDIS_URL"
        project_id = var.project_id
        secret     = google_secret_manager_secret.redis_url.secret_id
        version    = "latest"
      }
    }
  }
  depends_on = [google_secret_manager_secret_version.redis_url, google_project_service.apis]
}

# API.md: seat functions authenticate callers themselves (Firebase ID tokens), and
# health/jwks are public, so those admit unauthenticated invocation.
resource "google_cloud_run_service_iam_member" "public_invoker" {
  #checkov:skip=CKV_GCP_102:API.md makes health and jwks public and the seat/admin functions authenticate their callers themselves with Firebase ID tokens; IAM-gating them would make every licensed tool hold Google credentials. sweep is not public (scheduler account only).
  for_each = { for name, fn in local.functions : name => fn if fn.public }
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- the sweep: Cloud Scheduler, every minute, with an OIDC token --------------------------
resource "google_service_account" "scheduler" {
  account_id   = "${var.environment}-sweep-scheduler"
  display_name = "Calls the license server's sweep (${var.environment})"
}

resource "google_cloud_run_service_iam_member" "sweep_invoker" {
  location = var.region
  service  = google_cloudfunctions2_function.fn["sweep"].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_cloud_scheduler_job" "sweep" {
  name             = "${local.name}-sweep"
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
  depends_on = [google_project_service.apis]
}
