# A private network the functions reach Memorystore through; nothing may connect in.

resource "google_compute_network" "vpc" {
  name                    = "${var.name}-vpc"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "functions" {
  name                     = "${var.name}-functions"
  network                  = google_compute_network.vpc.id
  region                   = var.region
  ip_cidr_range            = var.connector_cidr
  private_ip_google_access = true
  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "deny_all_ingress" {
  name      = "${var.name}-deny-all-ingress"
  network   = google_compute_network.vpc.id
  direction = "INGRESS"
  priority  = 65534
  deny {
    protocol = "all"
  }
  source_ranges = ["0.0.0.0/0"]
  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_vpc_access_connector" "functions" {
  name   = "${var.environment}-conn"
  region = var.region
  subnet {
    name = google_compute_subnetwork.functions.name
  }
  min_instances = 2
  max_instances = var.connector_max_instances
}
