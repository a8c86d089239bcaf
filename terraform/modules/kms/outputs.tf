output "key_id" {
  description = "projects/.../cryptoKeys/lease-root: LEASE_ROOT_KMS_KEY of the functions."
  value       = google_kms_crypto_key.lease_root.id
}
