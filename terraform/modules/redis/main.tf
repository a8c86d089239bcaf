# Memorystore for Redis 7: who holds a seat now. AUTH on, TLS in transit, private only.
# Its URL (with the AUTH string) lives in Secret Manager and reaches the functions as a
# secret environment variable; no one reads it in clear from Terraform outputs.

resource "google_redis_instance" "seats" {
  name                    = "${var.name}-seats"
  tier                    = var.tier
  memory_size_gb          = var.memory_gb
  region                  = var.region
  redis_version           = "REDIS_7_0"
  authorized_network      = var.network_id
  connect_mode            = "PRIVATE_SERVICE_ACCESS"
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"
}

resource "google_secret_manager_secret" "redis_url" {
  secret_id = "${var.name}-redis-url"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret      = google_secret_manager_secret.redis_url.id
  secret_data = "rediss://:${google_redis_instance.seats.auth_string}@${google_redis_instance.seats.host}:${google_redis_instance.seats.port}/0"
}
