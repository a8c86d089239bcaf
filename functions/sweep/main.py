"""POST sweep: expire zombie leases, settle their records, rebuild Redis after data loss;
POST sweep/expiry (daily): record expiry warnings (shared/licensing/expiry_scan.py).

Only Cloud Scheduler calls it (its OIDC token, checked for audience and service account).
"""

import functions_framework

from shared.http import Call, json_function
from shared.observability import annotate
from shared.runtime import runtime


@functions_framework.http
@json_function("sweep", routes={"": ["POST"], "expiry": ["POST"]}, scheduler=True)
def sweep(call: Call):
    if call.route == "expiry":
        scanned = runtime().expiry_scan.run().as_json()
        # (named apart from the sweep's own `expired`, which a log-based metric counts)
        annotate(**{f"licenses_{name}": value for name, value in scanned.items()})
        return 200, scanned
    report = runtime().sweeper.run().as_json()
    # In the request log line: the sweep's log-based metrics (terraform/modules/monitoring).
    annotate(expired=report["expired"], reconciled=report["reconciled"], revived=report["revived"],
             complete=report["complete"])
    return 200, report
