"""The licensing use cases: acquire, heartbeat, release, validate."""
