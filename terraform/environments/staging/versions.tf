terraform {
  # State in GCS; the bucket is created once by hand (README: first deploy) and given at
  # init: terraform init -backend-config=bucket=<project>-license-server-tfstate
  backend "gcs" {
    prefix = "license-server/staging"
  }
  required_version = ">= 1.6.0, < 2.0.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "= 6.12.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "= 0.12.1" # modules/monitoring: the alerts' wait for new log-based metrics
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
