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
