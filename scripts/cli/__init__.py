"""Command-line tools for operators and developers (see scripts/licensectl, scripts/dev-token)."""
