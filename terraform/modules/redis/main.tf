# Memorystore for Redis 7: who holds a seat now. AUTH on, TLS in transit, private only.
# The functions get the instance's address in clear (REDIS_URL, no credentials) and read
# its AUTH string and server CA from Secret Manager themselves (REDIS_AUTH_SECRET,
# REDIS_CA_SECRET: the secrets' names), so a new secret version reaches running instances
# without a redeploy. No one reads either secret in clear from Terraform outputs.

resource "google_redis_instance" "seats" {
  name                    = "${var.name}-seats"
  tier                    = var.tier
  memory_size_gb          = var.memory_gb
  region                  = var.region
  redis_version           = "REDIS_7_0"
  authorized_network      = var.network_id
  # Direct peering (the default): the Serverless VPC Access connector in network_id
  # reaches it. PRIVATE_SERVICE_ACCESS would need an allocated range and a
  # servicenetworking connection first, for nothing this service uses.
  connect_mode            = "DIRECT_PEERING"
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"
}

resource "google_secret_manager_secret" "auth" {
  secret_id = "${var.name}-redis-auth"
  replication {
    auto {}
  }
}

# A new AUTH string (AUTH toggled off and on: docs/operations.md) makes the next apply
# replace this version with one holding the new string.
resource "google_secret_manager_secret_version" "auth" {
  secret      = google_secret_manager_secret.auth.id
  secret_data = google_redis_instance.seats.auth_string
}

resource "google_secret_manager_secret" "ca" {
  secret_id = "${var.name}-redis-ca"
  replication {
    auto {}
  }
}

# Every CA the instance lists, as one PEM bundle: when Memorystore adds the next CA (years
# before the current one expires) the next apply writes both, so either one verifies.
resource "google_secret_manager_secret_version" "ca" {
  secret      = google_secret_manager_secret.ca.id
  secret_data = join("\n", google_redis_instance.seats.server_ca_certs[*].cert)
}
