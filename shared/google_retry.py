"""How the adapters call Google's client libraries: retried briefly, failing within a bound.

A google-cloud-* method's default retry keeps trying for up to a minute, then raises
RetryError, which is not a GoogleAPICallError: a caller waiting on KMS or Secret Manager
would hang that long and then see an error no adapter translated (a 500). Every call
passes `bounded_retry(timeout_s)` and catches `FAILURES`.
"""

from __future__ import annotations

from google.api_core import exceptions as google_exceptions
from google.api_core import retry as google_retry

FAILURES = (google_exceptions.GoogleAPICallError, google_exceptions.RetryError)


def bounded_retry(timeout_s: float) -> google_retry.Retry:
    """Retry what Google's defaults retry (unavailable, overloaded, deadline) for at most `timeout_s`."""
    return google_retry.Retry(
        initial=0.1, maximum=1.0, multiplier=2.0, timeout=timeout_s,
        predicate=google_retry.if_exception_type(google_exceptions.ServiceUnavailable,
                                                 google_exceptions.ResourceExhausted,
                                                 google_exceptions.DeadlineExceeded),
    )
