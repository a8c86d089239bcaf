output "source_bucket" {
  description = "Bucket of function archives."
  value       = google_storage_bucket.sources.name
}
