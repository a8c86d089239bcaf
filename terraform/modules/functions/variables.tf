variable "project_id" {
  type        = string
  description = "Google Cloud project."
}

variable "region" {
  type        = string
  description = "Region of the functions and the scheduler job."
}

variable "environment" {
  type        = string
  description = "staging or production: prefixes function and account names."
}

variable "source_bucket" {
  type        = string
  description = "GCS bucket with the functions' source archives."
}

variable "function_sources" {
  type        = map(string)
  description = "Function name -> archive object in source_bucket (scripts/build-bundles output)."
  validation {
    condition = alltrue([for name in ["acquire", "heartbeat", "borrow", "release", "validate", "admin", "health", "jwks", "sweep", "notify", "console"] :
    contains(keys(var.function_sources), name)])
    error_message = "function_sources needs an archive for each of acquire, heartbeat, borrow, release, validate, admin, health, jwks, sweep, notify, console."
  }
}

variable "deployer_email" {
  type        = string
  description = "Service account the delivery pipeline deploys as (modules/delivery): may act as the functions' accounts."
}

variable "kms_key_id" {
  type        = string
  description = "The lease-token root key (LEASE_ROOT_KMS_KEY)."
}

variable "redis_url" {
  type        = string
  description = "rediss://<host>:<port>/0 of Memorystore, without credentials (REDIS_URL)."
  validation {
    condition     = startswith(var.redis_url, "rediss://") && !strcontains(var.redis_url, "@")
    error_message = "redis_url must be a TLS (rediss://) URL and carry no credentials: the AUTH string comes from redis_auth_secret."
  }
}

variable "redis_auth_secret" {
  type        = string
  description = "Secret holding Memorystore's AUTH string, projects/<project>/secrets/<secret_id> (REDIS_AUTH_SECRET). Pass modules/redis' output: it comes through the secret's version, so the functions wait for one."
  validation {
    condition     = can(regex("^projects/[^/]+/secrets/[^/]+$", var.redis_auth_secret))
    error_message = "redis_auth_secret must be a secret's resource name, projects/<project>/secrets/<secret_id> (no /versions/)."
  }
}

variable "redis_auth_secret_version" {
  type        = string
  description = "The AUTH string's secret version (modules/redis' auth_secret_version): the functions are created after it."
}

variable "redis_ca_secret_version" {
  type        = string
  description = "The server CAs' secret version (modules/redis' ca_secret_version): the functions are created after it."
}

variable "redis_wait_replicas" {
  type        = number
  description = "Replicas that must acknowledge a grant before it is answered (REDIS_WAIT_REPLICAS): 1 with a STANDARD_HA instance, so a failover cannot lose a grant; 0 without a replica (BASIC)."
  validation {
    condition     = contains([0, 1], var.redis_wait_replicas)
    error_message = "redis_wait_replicas must be 0 or 1 (Memorystore STANDARD_HA keeps one replica)."
  }
}

variable "redis_ca_secret" {
  type        = string
  description = "Secret holding Memorystore's server CA certificates as PEM, projects/<project>/secrets/<secret_id> (REDIS_CA_SECRET). Pass modules/redis' output: it comes through the secret's version, so the functions wait for one."
  validation {
    condition     = can(regex("^projects/[^/]+/secrets/[^/]+$", var.redis_ca_secret))
    error_message = "redis_ca_secret must be a secret's resource name, projects/<project>/secrets/<secret_id> (no /versions/)."
  }
}

variable "vpc_connector_id" {
  type        = string
  description = "Serverless VPC Access connector for egress to Memorystore."
}

variable "min_instances_signing" {
  type        = number
  description = "Warm instances of acquire and heartbeat (0 in staging; >= 1 avoids cold starts)."
  default     = 0
}

variable "max_instances" {
  type        = number
  description = "Upper bound on instances per function."
  default     = 50
}

variable "concurrency" {
  type        = number
  description = "Requests one instance serves at once (gunicorn threads)."
  default     = 16
}

variable "rate_limits" {
  type = object({
    per_ip              = string
    per_user            = string
    per_machine_key     = string
    per_license_acquire = string
  })
  description = "\"<per second>:<burst>\" limits (RATE_LIMIT_IP, RATE_LIMIT_USER, RATE_LIMIT_MACHINE_KEY, RATE_LIMIT_LICENSE_ACQUIRE); \"0\" = off."
  default = {
    per_ip              = "100:300"
    per_user            = "20:60"
    per_machine_key     = "50:200"
    per_license_acquire = "50:200"
  }
}

variable "usage_retention_days" {
  type        = number
  description = "Days the usage history keeps each hour; older hours are rolled up into their day (USAGE_RETENTION_DAYS)."
  default     = 400
}

variable "smtp_host" {
  type        = string
  description = "The SMTP relay e-mail notifications go through (SMTP_HOST; admin and notify only). \"\": no e-mail is sent and mailto: endpoints cannot be made."
  default     = ""
}

variable "smtp_port" {
  type        = number
  description = "The relay's submission port, STARTTLS always (SMTP_PORT)."
  default     = 587
  validation {
    condition     = var.smtp_port > 0 && var.smtp_port < 65536 && floor(var.smtp_port) == var.smtp_port
    error_message = "smtp_port must be a TCP port (1-65535)."
  }
}

variable "smtp_username" {
  type        = string
  description = "The relay account (SMTP_USERNAME), authenticated after STARTTLS with the password in the <environment>-smtp-password secret; \"\": no AUTH."
  default     = ""
}

variable "mail_from" {
  type        = string
  description = "Sender of the notification e-mails, From and envelope (MAIL_FROM); required with smtp_host."
  default     = ""
  validation {
    condition     = var.mail_from == "" || can(regex("^[A-Za-z0-9!$&'*+/=^_`{|}~.-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$", var.mail_from))
    error_message = "mail_from must be one plain address, local@domain.example."
  }
}

variable "console_firebase_api_key" {
  type        = string
  description = "The Firebase web API key the admin console's page signs in with (CONSOLE_FIREBASE_API_KEY; Firebase console > Project settings > Web API key). Public by design: it names the project to Firebase Auth. \"\": the console cannot sign anyone in."
  default     = ""
}
