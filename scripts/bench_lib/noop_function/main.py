"""The reference function of scripts/bench: no work at all, a tiny JSON answer.

Served by gunicorn with the stack's own flags, it measures what functions-framework,
Flask and gunicorn cost on this machine under the same load generator, so the seat
functions' saturation rates can be read as a share of that ceiling.
"""

import functions_framework


@functions_framework.http
def noop(request):
    request.get_data()  # read the body, as a real handler would
    return {"status": "ok"}
