output "function_urls" {
  description = "HTTPS URL of each function."
  value       = module.functions.function_urls
}

output "function_url_template" {
  description = "URL of function {name}: SMOKE_URL_TEMPLATE for tests/smoke."
  value       = module.functions.url_template
}

output "lease_root_kms_key" {
  description = "The KMS key whose enabled versions root lease tokens."
  value       = module.kms.key_id
}
