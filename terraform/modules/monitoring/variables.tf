variable "project_id" {
  type        = string
  description = "Google Cloud project."
}

variable "environment" {
  type        = string
  description = "staging or production: the functions' name prefix, which the log filters select on."
}

variable "ready_host" {
  type        = string
  description = "Host serving the health function (uptime check target)."
}

variable "ready_path" {
  type        = string
  description = "Path of health/ready on ready_host."
}

variable "alert_emails" {
  type        = list(string)
  description = "Who is told when an alert fires."
  default     = []
}

variable "max_server_errors_per_minute" {
  type        = number
  description = "5xx answers per minute tolerated before the error-rate alert fires."
  default     = 5
}

variable "max_denials_per_minute" {
  type        = number
  description = "NO_SEAT_AVAILABLE answers per minute that count as a spike."
  default     = 100
}
