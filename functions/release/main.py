"""POST release: give the seat back, or leave the wait queue (idempotent)."""

import functions_framework

from shared.http import Call, json_function
from shared.licensing.requests import ReleaseRequest
from shared.runtime import runtime


@functions_framework.http
@json_function("release", routes={"": ["POST"]})
def release(call: Call):
    return 200, runtime().seat_service.release(call.caller, call.parse(ReleaseRequest)).body
