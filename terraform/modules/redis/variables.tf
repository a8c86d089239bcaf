variable "name" {
  type        = string
  description = "Prefix of resource names."
}

variable "region" {
  type        = string
  description = "Region of the instance (the functions' region)."
}

variable "network_id" {
  type        = string
  description = "VPC the instance is peered with (direct peering), where the functions' connector is."
}

variable "tier" {
  type        = string
  description = "BASIC (staging) or STANDARD_HA (production: a replica and automatic failover)."
  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.tier)
    error_message = "tier must be BASIC or STANDARD_HA."
  }
}

variable "memory_gb" {
  type        = number
  description = "Capacity in GiB (a lease is ~200 bytes: 1 GiB holds millions)."
  default     = 1
}
