# Observability built on the functions' one structured log line per request (function,
# outcome, status, latency_ms, backend, and expired/reconciled on the sweep's line):
# log-based metrics, alert policies, an uptime check on readiness, one dashboard.
# Field names are a contract with shared/http/request_log.py.

locals {
  # The Logging query language (not Monitoring's filter syntax: no starts_with()). A
  # regular expression on the service name selects this environment's functions.
  requests = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"^${var.environment}-\" AND jsonPayload.function:*"
  metric   = "logging.googleapis.com/user"
}

resource "google_monitoring_notification_channel" "email" {
  for_each     = toset(var.alert_emails)
  display_name = "License server ${var.environment}: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }
}

# --- log-based metrics ----------------------------------------------------------------------
resource "google_logging_metric" "responses" {
  name   = "${var.environment}-license-responses"
  filter = local.requests
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key         = "function"
      value_type  = "STRING"
      description = "which function answered"
    }
    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "OK or the error code"
    }
  }
  label_extractors = {
    function = "EXTRACT(jsonPayload.function)"
    outcome  = "EXTRACT(jsonPayload.outcome)"
  }
}

resource "google_logging_metric" "seat_grants" {
  name   = "${var.environment}-license-seat-grants"
  filter = "${local.requests} AND jsonPayload.function=\"acquire\" AND jsonPayload.status=201"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_logging_metric" "seat_denials" {
  name   = "${var.environment}-license-seat-denials"
  filter = "${local.requests} AND jsonPayload.outcome=\"NO_SEAT_AVAILABLE\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_logging_metric" "server_errors" {
  name   = "${var.environment}-license-server-errors"
  filter = "${local.requests} AND jsonPayload.status>=500"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key        = "backend"
      value_type = "STRING"
    }
  }
  label_extractors = {
    backend = "EXTRACT(jsonPayload.backend)"
  }
}

resource "google_logging_metric" "latency" {
  name            = "${var.environment}-license-latency"
  filter          = local.requests
  value_extractor = "EXTRACT(jsonPayload.latency_ms)"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"
    labels {
      key        = "function"
      value_type = "STRING"
    }
  }
  label_extractors = {
    function = "EXTRACT(jsonPayload.function)"
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.4
      scale              = 0.5
    }
  }
}

resource "google_logging_metric" "sweep_runs" {
  name   = "${var.environment}-license-sweep-runs"
  filter = "${local.requests} AND jsonPayload.function=\"sweep\" AND jsonPayload.outcome=\"OK\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
}

resource "google_logging_metric" "sweep_expirations" {
  name            = "${var.environment}-license-sweep-expirations"
  filter          = "${local.requests} AND jsonPayload.function=\"sweep\" AND jsonPayload.outcome=\"OK\""
  value_extractor = "EXTRACT(jsonPayload.expired)"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 20
      growth_factor      = 2
      scale              = 1
    }
  }
}

# --- alerts -------------------------------------------------------------------------------
# A log-based metric is accepted by Cloud Monitoring only some minutes after it is created:
# an alert policy on it created in the same apply gets 404 (terraform-provider-google issue
# 11102). The alerts wait for this gate, which waits after the metrics are first created
# (and again only when one is replaced).
resource "time_sleep" "metrics_known_to_monitoring" {
  create_duration = "600s"
  triggers = {
    metrics = join(",", [
      google_logging_metric.server_errors.id, google_logging_metric.seat_denials.id,
      google_logging_metric.sweep_runs.id,
    ])
  }
}

resource "google_monitoring_alert_policy" "error_rate" {
  display_name          = "License server ${var.environment}: 5xx answers"
  combiner              = "OR"
  notification_channels = [for c in google_monitoring_notification_channel.email : c.id]
  depends_on            = [time_sleep.metrics_known_to_monitoring]
  conditions {
    display_name = "more than ${var.max_server_errors_per_minute} 5xx per minute for 5 minutes"
    condition_threshold {
      filter          = "metric.type=\"${local.metric}/${google_logging_metric.server_errors.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.max_server_errors_per_minute
      duration        = "300s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "redis_unreachable" {
  display_name          = "License server ${var.environment}: Redis unreachable"
  combiner              = "OR"
  notification_channels = [for c in google_monitoring_notification_channel.email : c.id]
  depends_on            = [time_sleep.metrics_known_to_monitoring]
  conditions {
    display_name = "requests answered UNAVAILABLE because of Redis"
    condition_threshold {
      filter          = "metric.type=\"${local.metric}/${google_logging_metric.server_errors.name}\" AND metric.label.backend=\"redis\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "120s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  conditions {
    display_name = "readiness check failing"
    condition_threshold {
      filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND metric.label.check_id=\"${google_monitoring_uptime_check_config.ready.uptime_check_id}\" AND resource.type=\"uptime_url\""
      comparison      = "COMPARISON_LT"
      threshold_value = 1
      duration        = "180s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_FRACTION_TRUE"
        cross_series_reducer = "REDUCE_MEAN"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "sweep_failing" {
  display_name          = "License server ${var.environment}: sweep not completing"
  combiner              = "OR"
  notification_channels = [for c in google_monitoring_notification_channel.email : c.id]
  depends_on            = [time_sleep.metrics_known_to_monitoring]
  conditions {
    display_name = "no successful sweep for 10 minutes"
    condition_absent {
      filter   = "metric.type=\"${local.metric}/${google_logging_metric.sweep_runs.name}\" AND resource.type=\"cloud_run_revision\""
      duration = "600s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "denial_spike" {
  display_name          = "License server ${var.environment}: seat denials spike"
  combiner              = "OR"
  notification_channels = [for c in google_monitoring_notification_channel.email : c.id]
  depends_on            = [time_sleep.metrics_known_to_monitoring]
  conditions {
    display_name = "more than ${var.max_denials_per_minute} NO_SEAT_AVAILABLE per minute for 10 minutes"
    condition_threshold {
      filter          = "metric.type=\"${local.metric}/${google_logging_metric.seat_denials.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.max_denials_per_minute
      duration        = "600s"
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

# --- uptime check on readiness (Redis and Firestore reachable) --------------------------------
resource "google_monitoring_uptime_check_config" "ready" {
  display_name = "License server ${var.environment}: health/ready"
  timeout      = "10s"
  period       = "60s"
  http_check {
    path         = var.ready_path
    port         = 443
    use_ssl      = true
    validate_ssl = true
    accepted_response_status_codes {
      status_value = 200
    }
  }
  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = var.ready_host
    }
  }
}

# --- one dashboard --------------------------------------------------------------------------------
resource "google_monitoring_dashboard" "license_server" {
  dashboard_json = jsonencode({
    displayName = "License server (${var.environment})"
    gridLayout = {
      columns = 2
      widgets = [
        for chart in [
          { title = "Seat grants / min", metric = google_logging_metric.seat_grants.name, aligner = "ALIGN_SUM", reducer = "REDUCE_SUM" },
          { title = "Seat denials / min", metric = google_logging_metric.seat_denials.name, aligner = "ALIGN_SUM", reducer = "REDUCE_SUM" },
          { title = "Answers by function and outcome", metric = google_logging_metric.responses.name, aligner = "ALIGN_SUM", reducer = "REDUCE_SUM" },
          { title = "5xx by backend", metric = google_logging_metric.server_errors.name, aligner = "ALIGN_SUM", reducer = "REDUCE_SUM" },
          { title = "Latency p99 (ms) by function", metric = google_logging_metric.latency.name, aligner = "ALIGN_PERCENTILE_99", reducer = "REDUCE_MAX" },
          { title = "Leases expired by the sweep", metric = google_logging_metric.sweep_expirations.name, aligner = "ALIGN_SUM", reducer = "REDUCE_SUM" },
          ] : {
          title = chart.title
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter      = "metric.type=\"${local.metric}/${chart.metric}\" AND resource.type=\"cloud_run_revision\""
                  aggregation = { alignmentPeriod = "60s", perSeriesAligner = chart.aligner, crossSeriesReducer = chart.reducer }
                }
              }
            }]
          }
        }
      ]
    }
  })
}
