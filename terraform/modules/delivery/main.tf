# Delivery: the bucket of function archives and the Cloud Build trigger that runs
# cloudbuild.yaml for this environment (staging: pushes to main; production: tags).

resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62:Access logs of a bucket only Cloud Build and Cloud Functions read add cost, not insight; object versioning keeps every archive.
  name                        = var.source_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
  lifecycle_rule {
    condition {
      age = 90 # archives older than any revision worth rolling back to
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_cloudbuild_trigger" "deploy" {
  name     = "license-server-${var.environment}"
  location = var.region
  filename = "cloudbuild.yaml"
  github {
    owner = var.github_owner
    name  = var.github_repo
    push {
      branch = var.environment == "production" ? null : var.branch
      tag    = var.environment == "production" ? var.release_tag_pattern : null
    }
  }
  substitutions = {
    _ENVIRONMENT   = var.environment
    _REGION        = var.region
    _SOURCE_BUCKET = google_storage_bucket.sources.name
  }
}
