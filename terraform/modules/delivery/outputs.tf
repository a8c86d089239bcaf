output "source_bucket" {
  description = "Bucket of function archives."
  value       = google_storage_bucket.sources.name
}

output "deployer_email" {
  description = "The service account cloudbuild.yaml runs as."
  value       = google_service_account.deployer.email
}
