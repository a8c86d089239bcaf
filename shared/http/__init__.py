"""HTTP plumbing shared by every function: limits, auth, errors, request log."""

from shared.http.endpoint import Call, json_function

__all__ = ["Call", "json_function"]
