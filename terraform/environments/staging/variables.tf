variable "project_id" {
  type        = string
  description = "Google Cloud project of this environment."
}

variable "region" {
  type        = string
  description = "Region for everything regional."
  default     = "europe-west1"
}

variable "source_bucket" {
  type        = string
  description = "Bucket of function archives (cloudbuild.yaml uploads there)."
}

variable "state_bucket" {
  type        = string
  description = "Bucket of Terraform's state, which the deployer may write (default: <project_id>-license-server-tfstate)."
  default     = ""
}

variable "function_sources" {
  type        = map(string)
  description = "Function name -> archive object (scripts/build-bundles' JSON output)."
}

variable "kms_algorithm" {
  type        = string
  description = "Lease-token root key algorithm."
  default     = "EC_SIGN_P256_SHA256"
}

variable "github_owner" {
  type        = string
  description = "GitHub owner of the repository Cloud Build builds."
  default     = "coditect"
}

variable "github_repo" {
  type        = string
  description = "GitHub repository Cloud Build builds."
  default     = "license-server"
}

variable "alert_emails" {
  type        = list(string)
  description = "Who is told when an alert fires."
  default     = []
}

variable "smtp_host" {
  type        = string
  description = "SMTP relay for e-mail notifications (mailto: endpoints); \"\": none (README, \"Notifications\")."
  default     = ""
}

variable "smtp_port" {
  type        = number
  description = "The relay's submission port (STARTTLS)."
  default     = 587
}

variable "smtp_username" {
  type        = string
  description = "The relay account; its password goes into the <environment>-smtp-password secret (docs/operations.md)."
  default     = ""
}

variable "mail_from" {
  type        = string
  description = "Sender of the notification e-mails; required with smtp_host."
  default     = ""
}

variable "console_firebase_api_key" {
  type        = string
  description = "The Firebase web API key the admin console signs in with (public; README, \"The admin console\")."
  default     = ""
}
