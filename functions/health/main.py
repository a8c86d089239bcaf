"""GET health (liveness, no backend calls) and GET health/ready (Redis and Firestore)."""

import functions_framework

from shared.health import readiness
from shared.http import Call, json_function
from shared.runtime import runtime


@functions_framework.http
@json_function("health", routes={"": ["GET", "HEAD"], "ready": ["GET", "HEAD"]}, public=True)
def health(call: Call):
    if call.route == "":
        return 200, {"status": "ok"}
    report = readiness(runtime())
    if report["status"] == "ok":
        return 200, report
    return 503, report, {"Retry-After": "5"}
