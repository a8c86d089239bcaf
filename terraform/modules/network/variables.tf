variable "name" {
  type        = string
  description = "Prefix of resource names, e.g. coditect-staging."
}

variable "environment" {
  type        = string
  description = "staging or production (short names: the connector's name is limited to 25 characters)."
}

variable "region" {
  type        = string
  description = "Region of the subnet and the Serverless VPC Access connector."
}

variable "connector_cidr" {
  type        = string
  description = "A free /28 for the connector's subnet."
  default     = "10.8.0.0/28"
}

variable "connector_max_instances" {
  type        = number
  description = "Upper bound on connector instances (throughput to Memorystore)."
  default     = 3
}
