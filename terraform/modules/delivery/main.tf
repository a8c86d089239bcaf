# Delivery: the bucket of function archives, the identity deploys run as, and the Cloud
# Build trigger that runs cloudbuild.yaml for this environment (staging: pushes to main;
# production: release tags, each approved by a person before it runs).

resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:Access logs of a bucket only Cloud Build and Cloud Functions read add cost, not insight; object versioning keeps every archive.
  name                        = var.source_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
  lifecycle_rule {
    condition {
      age = 90 # archives older than any revision worth rolling back to
    }
    action {
      type = "Delete"
    }
  }
}

# The deployer: what cloudbuild.yaml runs as. It replaces functions and their invokers and
# the sweep's schedule, and reads (never changes) what they depend on; infrastructure
# (network, Memorystore, KMS, Firestore, IAM, monitoring) is applied by a person
# (docs/operations.md: "Who may do what"). The steps that run repository tests and the
# smoke tests run in containers without access to its credentials (cloudbuild.yaml).
resource "google_service_account" "deployer" {
  account_id   = "${var.environment}-deployer"
  display_name = "Deploys the license server's functions (${var.environment})"
}

locals {
  deployer_project_roles = toset([
    "roles/logging.logWriter",                   # the build's own logs
    "roles/cloudfunctions.developer",            # create and update the functions
    "roles/run.admin",                           # their Cloud Run services' invoker bindings, traffic (rollback)
    "roles/cloudscheduler.admin",                # the sweep's job
    "roles/iam.securityReviewer",                # refresh: read the IAM policies the functions' grants live in
    "roles/iam.roleViewer",                      # refresh: the custom KMS roles
    "roles/iam.serviceAccountViewer",            # refresh: the functions' service accounts
    "roles/serviceusage.serviceUsageViewer",     # refresh: the enabled APIs
    "roles/browser",                             # refresh: the project (its number: the sweep's URL)
    "roles/cloudkms.viewer",                     # refresh: the lease-root key
    "roles/redis.viewer",                        # refresh: Memorystore's address and CA
    "roles/secretmanager.viewer",                # refresh: the Redis secrets' metadata
    "roles/vpcaccess.viewer",                    # refresh: the connector
    "roles/compute.networkViewer",               # refresh: the network and subnet
  ])
}

resource "google_project_iam_member" "deployer" {
  for_each = local.deployer_project_roles
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.deployer.email}"
}

# Uploads archives (content-addressed: --no-clobber reads before it writes); Terraform
# refreshes the bucket itself (storage.buckets.get: legacyBucketReader).
resource "google_storage_bucket_iam_member" "deployer_sources" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer", "roles/storage.legacyBucketReader"])
  bucket   = google_storage_bucket.sources.name
  role     = each.value
  member   = "serviceAccount:${google_service_account.deployer.email}"
}

# Terraform's state (the bucket made by hand before the first apply).
resource "google_storage_bucket_iam_member" "deployer_state" {
  bucket = var.state_bucket
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.deployer.email}"
}

# The smoke tests' sign-in: the web API key and the two test users' passwords (made by
# hand before the first apply: docs/operations.md).
resource "google_secret_manager_secret_iam_member" "deployer_smoke" {
  for_each  = toset(["firebase-api-key", "owner-password", "user-password"])
  secret_id = "${var.smoke_secrets_prefix}-${each.value}"
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.deployer.email}"
}

resource "google_cloudbuild_trigger" "deploy" {
  name            = "license-server-${var.environment}"
  location        = var.region
  filename        = "cloudbuild.yaml"
  service_account = google_service_account.deployer.id
  # Production deploys only what a person approved (Cloud Build: Approvals).
  approval_config {
    approval_required = var.environment == "production"
  }
  github {
    owner = var.github_owner
    name  = var.github_repo
    push {
      branch = var.environment == "production" ? null : var.branch
      tag    = var.environment == "production" ? var.release_tag_pattern : null
    }
  }
  substitutions = {
    _ENVIRONMENT          = var.environment
    _REGION               = var.region
    _SOURCE_BUCKET        = google_storage_bucket.sources.name
    _TF_STATE_BUCKET      = var.state_bucket
    _SMOKE_SECRETS_PREFIX = var.smoke_secrets_prefix
  }
  depends_on = [
    google_project_iam_member.deployer,
    google_storage_bucket_iam_member.deployer_sources,
    google_storage_bucket_iam_member.deployer_state,
    google_secret_manager_secret_iam_member.deployer_smoke,
  ]
}
