"""POST borrow (check a seat out for offline use) and POST borrow/return (give it back early)."""

import functions_framework

from shared.http import Call, json_function
from shared.licensing.requests import BorrowRequest, SessionRequest
from shared.runtime import runtime


@functions_framework.http
@json_function("borrow", routes={"": ["POST"], "return": ["POST"]})
def borrow(call: Call):
    service = runtime().seat_service
    if call.route == "return":
        return 200, service.return_borrow(call.caller, call.parse(SessionRequest)).body
    return 200, service.borrow(call.caller, call.parse(BorrowRequest)).body
