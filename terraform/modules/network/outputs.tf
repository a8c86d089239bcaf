output "network_id" {
  description = "The VPC Memorystore is attached to."
  value       = google_compute_network.vpc.id
}

output "connector_id" {
  description = "Serverless VPC Access connector for the functions' egress."
  value       = google_vpc_access_connector.functions.id
}
