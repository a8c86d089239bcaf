"""HTTP plumbing shared by every function: limits, auth, errors, request log."""

from shared.http.endpoint import Call, HandlerResult, json_function, methods_by_route

__all__ = ["Call", "HandlerResult", "json_function", "methods_by_route"]
