"""POST notify: deliver notifications to webhook endpoints (shared/licensing/webhook_dispatch.py).

Cloud Scheduler calls it every minute (its OIDC token, for this function's own URL). Each
run takes what the sweep published to the delivery subscription, then makes the delivery
attempts that are due, until NOTIFY_BUDGET_S; the next run goes on where it stopped.
"""

import time

import functions_framework

from shared.http import Call, json_function
from shared.observability import annotate
from shared.runtime import runtime


@functions_framework.http
@json_function("notify", routes={"": ["POST"]}, scheduler=True)
def notify(call: Call):
    rt = runtime()
    report = rt.webhook_dispatch.run(deadline=time.monotonic() + rt.settings.notify_budget_s).as_json()
    annotate(**{f"webhooks_{name}": value for name, value in report.items()})
    return 200, report
