output "dashboard_id" {
  description = "The license server dashboard."
  value       = google_monitoring_dashboard.license_server.id
}
