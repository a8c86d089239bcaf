variable "name" {
  type        = string
  description = "Prefix of the key ring's name."
}

variable "location" {
  type        = string
  description = "KMS location (the functions' region)."
}

variable "algorithm" {
  type        = string
  description = "Root key algorithm: EC_SIGN_P256_SHA256 (default) or RSA_SIGN_PKCS1_4096_SHA256."
  default     = "EC_SIGN_P256_SHA256"
  validation {
    condition     = contains(["EC_SIGN_P256_SHA256", "RSA_SIGN_PKCS1_4096_SHA256"], var.algorithm)
    error_message = "algorithm must be EC_SIGN_P256_SHA256 or RSA_SIGN_PKCS1_4096_SHA256."
  }
}

variable "protection_level" {
  type        = string
  description = "HSM (production) or SOFTWARE."
  default     = "HSM"
}
