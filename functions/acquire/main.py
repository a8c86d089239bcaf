"""POST acquire: take a floating seat of a license for this user + hardware.

201: a new session; 200: the caller's live session, handed back; 202: the caller waits in
the license's queue (asked with `wait`, or polling its `ticket`).
"""

import functions_framework

from shared.http import Call, json_function
from shared.licensing.requests import AcquireRequest
from shared.runtime import runtime


@functions_framework.http
@json_function("acquire", routes={"": ["POST"]})
def acquire(call: Call):
    answer = runtime().seat_service.acquire_seat(call.caller, call.parse(AcquireRequest), client_ip=call.client_ip)
    if answer.queued:
        return 202, answer.body
    return (201 if answer.created else 200), answer.body
