# The staging environment: the reusable modules, with staging's sizes.

locals {
  environment = "staging"
  name        = "coditect-staging"
}

resource "google_project_service" "apis" {
  for_each = toset([
    "cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
    "firestore.googleapis.com", "redis.googleapis.com", "cloudkms.googleapis.com",
    "secretmanager.googleapis.com", "vpcaccess.googleapis.com", "artifactregistry.googleapis.com",
    "cloudscheduler.googleapis.com", "monitoring.googleapis.com", "logging.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

module "network" {
  source      = "../../modules/network"
  name        = local.name
  environment = local.environment
  region      = var.region
  depends_on  = [google_project_service.apis]
}

module "redis" {
  source     = "../../modules/redis"
  name       = local.name
  region     = var.region
  network_id = module.network.network_id
  tier       = "BASIC"
  memory_gb  = 1
}

module "firestore" {
  source     = "../../modules/firestore"
  location   = var.region
  depends_on = [google_project_service.apis]
}

module "kms" {
  source           = "../../modules/kms"
  name             = local.name
  location         = var.region
  algorithm        = var.kms_algorithm
  protection_level = "SOFTWARE"
  depends_on       = [google_project_service.apis]
}

module "delivery" {
  source        = "../../modules/delivery"
  environment   = local.environment
  region        = var.region
  source_bucket = var.source_bucket
  github_owner  = var.github_owner
  github_repo   = var.github_repo
}

module "functions" {
  source                = "../../modules/functions"
  project_id            = var.project_id
  region                = var.region
  environment           = local.environment
  source_bucket         = module.delivery.source_bucket
  function_sources      = var.function_sources
  kms_key_id            = module.kms.key_id
  redis_url_secret_id   = module.redis.url_secret_id
  vpc_connector_id      = module.network.connector_id
  min_instances_signing = 0
  max_instances         = 20
}

module "monitoring" {
  source       = "../../modules/monitoring"
  project_id   = var.project_id
  environment  = local.environment
  ready_host   = module.functions.health_host
  ready_path   = module.functions.health_path
  alert_emails = var.alert_emails
}
