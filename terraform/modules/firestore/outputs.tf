output "database" {
  description = "The Firestore database name."
  value       = google_firestore_database.default.name
}
