# The whole license server of one environment: every module, wired together. The
# environments (environments/staging, environments/production) differ only in sizes.

locals {
  name = "coditect-${var.environment}"
}

resource "google_project_service" "apis" {
  for_each = toset([
    "cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
    "firestore.googleapis.com", "redis.googleapis.com", "cloudkms.googleapis.com",
    "secretmanager.googleapis.com", "vpcaccess.googleapis.com", "artifactregistry.googleapis.com",
    "cloudscheduler.googleapis.com", "monitoring.googleapis.com", "logging.googleapis.com",
    "firebaserules.googleapis.com", "identitytoolkit.googleapis.com",
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
  environment   = var.environment
  region        = var.region
  source_bucket = var.source_bucket
  github_owner  = var.github_owner
  github_repo   = var.github_repo
}

module "functions" {
  source                = "../functions"
  project_id            = var.project_id
  region                = var.region
  environment           = var.environment
  source_bucket         = module.delivery.source_bucket
  function_sources      = var.function_sources
  kms_key_id            = module.kms.key_id
  redis_url             = module.redis.url
  redis_auth_secret     = module.redis.auth_secret
  redis_ca_secret       = module.redis.ca_secret
  redis_wait_replicas   = var.redis_tier == "STANDARD_HA" ? 1 : 0
  vpc_connector_id      = module.network.connector_id
  min_instances_signing = var.min_instances_signing
  max_instances         = var.max_instances
}

module "monitoring" {
  source       = "../monitoring"
  project_id   = var.project_id
  environment  = var.environment
  ready_host   = module.functions.health_host
  ready_path   = module.functions.health_path
  alert_emails = var.alert_emails
}
