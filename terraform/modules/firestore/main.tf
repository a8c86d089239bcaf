# Firestore (native): the durable record, and the composite indexes the code's queries use.

resource "google_firestore_database" "default" {
  name        = "(default)"
  location_id = var.location
  type        = "FIRESTORE_NATIVE"
}

locals {
  # collection -> ordered fields ("-" prefix: descending), one entry per composite query
  indexes = {
    active_sessions       = { collection = "sessions", fields = ["license_id", "status"] }   # reconciliation
    held_by_license       = { collection = "sessions", fields = ["license_id", "seat_held_until"] }  # a table's rebuild
    usage_by_license      = { collection = "usage", fields = ["license_id", "day"] }                 # durable counters
    events_by_tenant      = { collection = "events", fields = ["tenant_id", "-at"] }          # audit log
    events_by_license     = { collection = "events", fields = ["tenant_id", "license_id", "-at"] }
  }
}

resource "google_firestore_index" "query" {
  for_each   = local.indexes
  database   = google_firestore_database.default.name
  collection = each.value.collection
  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = trimprefix(fields.value, "-")
      order      = startswith(fields.value, "-") ? "DESCENDING" : "ASCENDING"
    }
  }
}

# Security rules for client SDKs: deny everything (see firestore.rules).
resource "google_firebaserules_ruleset" "firestore" {
  source {
    files {
      name    = "firestore.rules"
      content = file("${path.module}/firestore.rules")
    }
  }
  depends_on = [google_firestore_database.default]
}

resource "google_firebaserules_release" "firestore" {
  name         = "cloud.firestore" # the release that governs the (default) database
  ruleset_name = google_firebaserules_ruleset.firestore.name
  lifecycle {
    replace_triggered_by = [google_firebaserules_ruleset.firestore]
  }
}
