output "function_urls" {
  description = "HTTPS URL of each function."
  value       = module.license_server.function_urls
}

output "function_url_template" {
  description = "URL of function {name}: SMOKE_URL_TEMPLATE for tests/smoke."
  value       = module.license_server.function_url_template
}

output "lease_root_kms_key" {
  description = "The KMS key whose enabled versions root lease tokens."
  value       = module.license_server.lease_root_kms_key
}

output "function_sources" {
  description = "The archive each function was deployed from (cloudbuild.yaml keeps it to roll back to)."
  value       = var.function_sources
}
