"""GET jwks: public keys of the lease-token signing root (every enabled KMS version)."""

import functions_framework

from shared.http import Call, json_function
from shared.runtime import runtime


@functions_framework.http
@json_function("jwks", routes={"": ["GET", "HEAD"]}, public=True)
def jwks(call: Call):
    settings = runtime().settings
    keys = runtime().root_signer.public_jwks()
    return 200, {"keys": keys}, {"Cache-Control": f"public, max-age={settings.jwks_max_age_s}"}
