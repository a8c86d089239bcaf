output "url_secret_id" {
  description = "Secret Manager secret holding the rediss:// URL with its AUTH string."
  value       = google_secret_manager_secret.redis_url.secret_id
}

output "url_secret_version" {
  description = "The secret version the functions depend on (so they deploy after it)."
  value       = google_secret_manager_secret_version.redis_url.id
}
