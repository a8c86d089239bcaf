"""POST sweep: expire zombie leases, settle their records, rebuild Redis after data loss.

Only Cloud Scheduler calls it (its OIDC token, checked for audience and service account).
"""

import functions_framework

from shared.http import Call, json_function
from shared.observability import annotate
from shared.runtime import runtime


@functions_framework.http
@json_function("sweep", routes={"": ["POST"]}, scheduler=True)
def sweep(call: Call):
    report = runtime().sweeper.run().as_json()
    # In the request log line: the sweep's log-based metrics (terraform/modules/monitoring).
    annotate(expired=report["expired"], reconciled=report["reconciled"], revived=report["revived"],
             complete=report["complete"])
    return 200, report
