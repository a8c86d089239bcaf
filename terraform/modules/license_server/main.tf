# The whole license server of one environment: every module, wired together. The
# environments (environments/staging, environments/production) differ only in sizes.

locals {
  name = "coditect-${var.environment}"
}

# Every API a resource below uses (tests/unit/test_terraform_companions.py keeps the list
# complete). serviceusage and cloudresourcemanager must already be on before the first
# apply (the provider reads and enables services through them: docs/operations.md);
# listing them keeps them on.
resource "google_project_service" "apis" {
  for_each = toset([
    "serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com", "iam.googleapis.com",
    "compute.googleapis.com", "vpcaccess.googleapis.com", "storage.googleapis.com",
    "cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com", "firestore.googleapis.com", "redis.googleapis.com",
    "cloudkms.googleapis.com", "secretmanager.googleapis.com", "cloudscheduler.googleapis.com",
    "monitoring.googleapis.com", "logging.googleapis.com", "firebaserules.googleapis.com",
    "identitytoolkit.googleapis.com", "pubsub.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

module "network" {
  source      = "../network"
  name        = local.name
  environment = var.environment
  region      = var.region
  depends_on  = [google_project_service.apis]
}

module "redis" {
  source     = "../redis"
  name       = local.name
  region     = var.region
  network_id = module.network.network_id
  tier       = var.redis_tier
  memory_gb  = var.redis_memory_gb
  depends_on = [google_project_service.apis]
}

module "firestore" {
  source     = "../firestore"
  location   = var.region
  depends_on = [google_project_service.apis]
}

module "kms" {
  source           = "../kms"
  name             = local.name
  location         = var.region
  algorithm        = var.kms_algorithm
  protection_level = var.kms_protection_level
  depends_on       = [google_project_service.apis]
}

module "delivery" {
  source        = "../delivery"
  project_id    = var.project_id
  state_bucket  = coalesce(var.state_bucket, "${var.project_id}-license-server-tfstate")
  environment   = var.environment
  region        = var.region
  source_bucket = var.source_bucket
  github_owner  = var.github_owner
  github_repo   = var.github_repo
  depends_on    = [google_project_service.apis]
}

module "functions" {
  source                    = "../functions"
  project_id                = var.project_id
  region                    = var.region
  environment               = var.environment
  source_bucket             = module.delivery.source_bucket
  function_sources          = var.function_sources
  deployer_email            = module.delivery.deployer_email
  kms_key_id                = module.kms.key_id
  redis_url                 = module.redis.url
  redis_auth_secret         = module.redis.auth_secret
  redis_ca_secret           = module.redis.ca_secret
  redis_auth_secret_version = module.redis.auth_secret_version
  redis_ca_secret_version   = module.redis.ca_secret_version
  redis_wait_replicas       = var.redis_tier == "STANDARD_HA" ? 1 : 0
  vpc_connector_id          = module.network.connector_id
  min_instances_signing     = var.min_instances_signing
  max_instances             = var.max_instances
  usage_retention_days      = var.usage_retention_days
  smtp_host                 = var.smtp_host
  smtp_port                 = var.smtp_port
  smtp_username             = var.smtp_username
  mail_from                 = var.mail_from
  console_firebase_api_key  = var.console_firebase_api_key
  depends_on                = [google_project_service.apis]
}

module "monitoring" {
  source       = "../monitoring"
  project_id   = var.project_id
  environment  = var.environment
  ready_host   = module.functions.health_host
  ready_path   = module.functions.health_path
  alert_emails = var.alert_emails
  depends_on   = [google_project_service.apis]
}
