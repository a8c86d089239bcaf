variable "project_id" {
  type        = string
  description = "Google Cloud project that hosts the license server."
}

variable "region" {
  type        = string
  description = "Region for Cloud Functions, Memorystore and the VPC connector."
  default     = "europe-west1"
}

variable "environment" {
  type        = string
  description = "Deployment name used in resource names (staging, production)."
  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "source_bucket" {
  type        = string
  description = "GCS bucket holding one source archive per function (built by scripts/ in Cloud Build)."
}

variable "function_sources" {
  type        = map(string)
  description = "Function name -> object name of its source archive in source_bucket."
  validation {
    condition     = alltrue([for name in keys(var.function_sources) : contains(["acquire", "heartbeat", "release", "validate", "health", "jwks", "sweep", "admin"], name)])
    error_message = "function_sources keys must be function names of API.md."
  }
}

variable "redis_tier" {
  type        = string
  description = "Memorystore tier: BASIC (staging) or STANDARD_HA (production)."
  default     = "STANDARD_HA"
}

variable "redis_memory_gb" {
  type        = number
  description = "Memorystore capacity in GiB."
  default     = 1
}

variable "kms_algorithm" {
  type        = string
  description = "Algorithm of the lease-token root key (EC_SIGN_P256_SHA256 or RSA_SIGN_PKCS1_4096_SHA256)."
  default     = "EC_SIGN_P256_SHA256"
  validation {
    condition     = contains(["EC_SIGN_P256_SHA256", "RSA_SIGN_PKCS1_4096_SHA256"], var.kms_algorithm)
    error_message = "kms_algorithm must be EC_SIGN_P256_SHA256 or RSA_SIGN_PKCS1_4096_SHA256."
  }
}

variable "max_instances" {
  type        = number
  description = "Upper bound on instances per seat function."
  default     = 50
}
