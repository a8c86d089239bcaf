variable "project_id" {
  type        = string
  description = "Google Cloud project (the deployer's roles are granted on it)."
}

variable "environment" {
  type        = string
  description = "staging (deploys every push to the branch) or production (deploys release tags)."
}

variable "region" {
  type        = string
  description = "Region of the bucket and the trigger."
}

variable "source_bucket" {
  type        = string
  description = "Name of the bucket holding function archives."
}

variable "github_owner" {
  type        = string
  description = "GitHub owner of the repository (connected to Cloud Build)."
}

variable "github_repo" {
  type        = string
  description = "GitHub repository name."
}

variable "branch" {
  type        = string
  description = "Branch whose pushes deploy staging (a regex)."
  default     = "^main$"
}

variable "release_tag_pattern" {
  type        = string
  description = "Tags that deploy production (a regex)."
  default     = "^v[0-9]+\\.[0-9]+\\.[0-9]+$"
}

variable "state_bucket" {
  type        = string
  description = "Bucket of Terraform's state (made by hand before the first apply); the deployer reads and writes it."
}

variable "smoke_secrets_prefix" {
  type        = string
  description = "Prefix of the smoke tests' secrets (<prefix>-firebase-api-key, -owner-password, -user-password; made by hand)."
  default     = "license-server-smoke"
}
