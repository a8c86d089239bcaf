"""POST validate: is this license usable right now?"""

import functions_framework

from shared.http import Call, json_function
from shared.licensing.requests import ValidateRequest
from shared.runtime import runtime


@functions_framework.http
@json_function("validate", routes={"": ["POST"]})
def validate(call: Call):
    return 200, runtime().seat_service.validate(call.caller, call.parse(ValidateRequest)).body
