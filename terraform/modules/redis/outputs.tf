output "url" {
  description = "rediss://<host>:<port>/0 of the instance, without credentials (REDIS_URL)."
  value       = "rediss://${google_redis_instance.seats.host}:${google_redis_instance.seats.port}/0"
}

# The secrets' names are read through their versions (the version's `secret` is the
# secret's id, projects/<project>/secrets/<secret_id>): whatever uses them waits until a
# version exists, and a new version leaves them unchanged (no redeploy).
output "auth_secret" {
  description = "Secret holding the AUTH string, as projects/<project>/secrets/<secret_id> (REDIS_AUTH_SECRET)."
  value       = google_secret_manager_secret_version.auth.secret
}

output "auth_secret_version" {
  description = "The AUTH string's secret version Terraform wrote (projects/<project number>/secrets/<secret_id>/versions/<n>)."
  value       = google_secret_manager_secret_version.auth.id
}

output "ca_secret" {
  description = "Secret holding the server CA certificates (PEM), as projects/<project>/secrets/<secret_id> (REDIS_CA_SECRET)."
  value       = google_secret_manager_secret_version.ca.secret
}

output "ca_secret_version" {
  description = "The server CAs' secret version Terraform wrote (projects/<project number>/secrets/<secret_id>/versions/<n>)."
  value       = google_secret_manager_secret_version.ca.id
}
