output "function_urls" {
  description = "HTTPS URL of each function (the smoke tests' base URLs)."
  value       = { for name, fn in google_cloudfunctions2_function.fn : name => fn.service_config[0].uri }
}

output "lease_root_kms_key" {
  description = "The KMS key whose enabled versions root lease tokens (rotate: add a version)."
  value       = google_kms_crypto_key.lease_root.id
}
