# The production environment: the license server with production's sizes.

module "license_server" {
  source      = "../../modules/license_server"
  environment = "production"

  project_id               = var.project_id
  region                   = var.region
  source_bucket            = var.source_bucket
  state_bucket             = var.state_bucket
  function_sources         = var.function_sources
  kms_algorithm            = var.kms_algorithm
  github_owner             = var.github_owner
  github_repo              = var.github_repo
  alert_emails             = var.alert_emails
  smtp_host                = var.smtp_host
  smtp_port                = var.smtp_port
  smtp_username            = var.smtp_username
  mail_from                = var.mail_from
  console_firebase_api_key = var.console_firebase_api_key

  redis_tier            = "STANDARD_HA"
  kms_protection_level  = "HSM"
  min_instances_signing = 1
  max_instances         = 100
}
