"""POST heartbeat: extend the caller's lease and get a fresh lease token."""

import functions_framework

from shared.http import Call, json_function
from shared.licensing.requests import SessionRequest
from shared.runtime import runtime


@functions_framework.http
@json_function("heartbeat", routes={"": ["POST"]})
def heartbeat(call: Call):
    answer = runtime().seat_service.heartbeat(call.caller, call.parse(SessionRequest), client_ip=call.client_ip)
    return 200, answer.body
