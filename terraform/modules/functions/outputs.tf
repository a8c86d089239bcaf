output "function_urls" {
  description = "HTTPS URL of each function."
  value       = { for name, fn in google_cloudfunctions2_function.fn : name => fn.service_config[0].uri }
}

output "url_template" {
  description = "URL of function {name} (the smoke tests' SMOKE_URL_TEMPLATE)."
  value       = local.url_template
}

output "health_host" {
  description = "Host of the health function (the uptime check's target)."
  value       = "${var.region}-${var.project_id}.cloudfunctions.net"
}

output "health_path" {
  description = "Path of the readiness probe on health_host."
  value       = "/${var.environment}-health/ready"
}
