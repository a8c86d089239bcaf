"""Coditect license client: hold a floating seat for the life of a tool.

    from coditect_license import License, FirebaseAuthProvider
    with License(KEY, server=URL, token_provider=provider, trusted_roots=ROOT_THUMBPRINTS) as lease:
        main(features=lease.features)

`License` and `Lease` are one class; `LeaseOptions` holds its rarely needed settings.
To wait for a seat when all are taken (in the license's wait queue, if it has one):

    lease = License(KEY, ...).acquire(wait_s=600, on_queued=lambda position, length: ...)

A signed usage statement (a license's month of usage) verifies offline like a lease token:

    claims = verify_statement(statement, jwks, trusted_roots=ROOT_THUMBPRINTS, series=report)

A webhook the server sent your endpoint verifies with the endpoint's secret (WebhookInvalid if not):

    event = verify_webhook(request_body_bytes, request_headers, WEBHOOK_SECRET)
"""

from coditect_license._version import __version__
from coditect_license.errors import (
    AuthError,
    BorrowNotAllowed,
    Forbidden,
    Gone,
    GroupSeatLimit,
    InvalidRequest,
    LeaseLost,
    LicenseError,
    LicenseExpired,
    LicenseNotFound,
    LicenseSuspended,
    NetworkError,
    NoLease,
    NoSeatAvailable,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    SessionExpired,
    SessionNotFound,
    TicketGone,
    TokenExpired,
    TokenInvalid,
    TrustNotPinned,
    Unauthenticated,
    UserSessionLimit,
    WebhookInvalid,
)
from coditect_license.fingerprint import Fingerprint, hardware_id
from coditect_license.fingerprint import compute as compute_fingerprint
from coditect_license.identity import (
    CallableTokenProvider,
    FirebaseAuthProvider,
    StaticTokenProvider,
    TokenProvider,
)
from coditect_license.jwks import JwksCache
from coditect_license.lease import Lease, License
from coditect_license.lease_options import LeaseOptions
from coditect_license.lease_state import LeaseState
from coditect_license.statements import series_sha256, verify_statement
from coditect_license.tokens import CLOCK_SKEW_S, LeaseClaims, verify_lease_token
from coditect_license.transport import ApiClient, RetryPolicy
from coditect_license.webhooks import verify_webhook

__all__ = [
    "__version__", "License", "Lease", "LeaseOptions", "LeaseState",
    "LeaseClaims", "JwksCache", "verify_lease_token", "CLOCK_SKEW_S", "verify_statement", "series_sha256",
    "TokenProvider", "StaticTokenProvider", "CallableTokenProvider", "FirebaseAuthProvider",
    "Fingerprint", "hardware_id", "compute_fingerprint", "ApiClient", "RetryPolicy", "verify_webhook",
    "LicenseError", "InvalidRequest", "Unauthenticated", "Forbidden", "LicenseSuspended", "BorrowNotAllowed",
    "NotFound", "LicenseNotFound", "SessionNotFound", "NoSeatAvailable", "UserSessionLimit", "GroupSeatLimit",
    "Gone", "LicenseExpired", "SessionExpired", "TicketGone", "RateLimited", "ServiceUnavailable", "NetworkError",
    "AuthError", "TokenInvalid", "TokenExpired", "TrustNotPinned", "NoLease", "LeaseLost", "WebhookInvalid",
]
