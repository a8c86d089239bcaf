"""POST acquire: take a floating seat of a license for this user + hardware."""

import functions_framework

from shared.http import Call, json_function
from shared.licensing.requests import AcquireRequest
from shared.runtime import runtime


@functions_framework.http
@json_function("acquire", routes={"": ["POST"]})
def acquire(call: Call):
    answer = runtime().seat_service.acquire_seat(call.caller, call.parse(AcquireRequest))
    return (201 if answer.created else 200), answer.body
