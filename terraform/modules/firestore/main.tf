# Firestore (native): the durable record, and the composite indexes the code's queries use.

resource "google_firestore_database" "default" {
  name        = "(default)"
  location_id = var.location
  type        = "FIRESTORE_NATIVE"
}

locals {
  # collection -> ordered fields ("-" prefix: descending), one entry per composite query
  indexes = {
    active_sessions    = { collection = "sessions", fields = ["license_id", "status"] }          # reconciliation
    held_by_license    = { collection = "sessions", fields = ["license_id", "seat_held_until"] } # a table's rebuild
    ended_by_license   = { collection = "sessions", fields = ["license_id", "ended_at"] }        # a report's open hours
    usage_by_license   = { collection = "usage_days", fields = ["license_id", "day"] }           # a license's report
    usage_by_tenant    = { collection = "usage_days", fields = ["tenant_id", "day"] }            # a tenant's report
    usage_to_roll_up   = { collection = "usage_days", fields = ["has_hours", "day"] }            # the retention step
    deliveries_due     = { collection = "deliveries", fields = ["state", "next_at"] }            # webhook retries
    deliveries_by_hook = { collection = "deliveries", fields = ["endpoint_id", "-updated_at"] }  # delivery log
    events_by_tenant   = { collection = "events", fields = ["tenant_id", "-at"] }                # audit log
    events_by_license  = { collection = "events", fields = ["tenant_id", "license_id", "-at"] }
    # the audit log's filters (GET admin/events ?type= &actor=), with or without a license
    events_by_type               = { collection = "events", fields = ["tenant_id", "type", "-at"] }
    events_by_actor              = { collection = "events", fields = ["tenant_id", "actor", "-at"] }
    events_by_type_actor         = { collection = "events", fields = ["tenant_id", "type", "actor", "-at"] }
    events_by_license_type       = { collection = "events", fields = ["tenant_id", "license_id", "type", "-at"] }
    events_by_license_actor      = { collection = "events", fields = ["tenant_id", "license_id", "actor", "-at"] }
    events_by_license_type_actor = { collection = "events", fields = ["tenant_id", "license_id", "type", "actor", "-at"] }
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

# The usage history's maps (hours, per-user figures, totals: shared/store/usage_store.py) are
# read whole, never queried: not indexed, so a busy license's day document stays far from
# Firestore's limit of index entries per document, and its writes cost no index updates.
resource "google_firestore_field" "usage_unindexed" {
  for_each   = toset(["hours", "users", "total"])
  database   = google_firestore_database.default.name
  collection = "usage_days"
  field      = each.value
  index_config {}
}

resource "google_firestore_field" "checkpoints_unindexed" {
  database   = google_firestore_database.default.name
  collection = "usage_checkpoints"
  field      = "c"
  index_config {}
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
