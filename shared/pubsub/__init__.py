"""Notifications out: Pub/Sub (google-cloud-pubsub)."""
