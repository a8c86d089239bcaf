"""POST sweep: expire zombie leases, settle their records, rebuild Redis after data loss.

Only Cloud Scheduler calls it (its OIDC token, checked for audience and service account).
"""

import functions_framework

from shared.http import Call, json_function
from shared.runtime import runtime


@functions_framework.http
@json_function("sweep", routes={"": ["POST"]}, scheduler=True)
def sweep(call: Call):
    return 200, runtime().sweeper.run().as_json()
