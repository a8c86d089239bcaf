# The root of every lease token: an asymmetric signing key in Cloud KMS.
# Rotation (docs in the README): create a new key version; instances pick it up for new
# delegation certificates within minutes; jwks publishes every ENABLED version, so
# disable the old one only after the longest lease ttl (+ certificate life) has passed.

resource "google_kms_key_ring" "tokens" {
  name     = "${var.name}-tokens"
  location = var.location
}

resource "google_kms_crypto_key" "lease_root" {
  name     = "lease-root"
  key_ring = google_kms_key_ring.tokens.id
  purpose  = "ASYMMETRIC_SIGN"
  version_template {
    algorithm        = var.algorithm
    protection_level = var.protection_level
  }
  lifecycle {
    prevent_destroy = true
  }
}
