"""A local stand-in for Google's token-signing certificate endpoints.

Google publishes {kid: x509 PEM} for Firebase ID tokens (securetoken) and for OAuth2 /
OIDC tokens (Cloud Scheduler's). firebase-admin and google-auth fetch those URLs to check
signatures; pointing them here (ID_TOKEN_CERTS_URL, OIDC_CERTS_URL) runs the production
verification code unchanged, with tokens this process signs.
"""

from __future__ import annotations

import datetime
import http.server
import json
import threading
import time
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local-google-certs")])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))


class LocalGoogleCerts:
    def __init__(self, kid: str = "local-kid-1"):
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        body = json.dumps({kid: _self_signed(self.private_key).public_bytes(serialization.Encoding.PEM).decode()})
        payload = body.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=3600")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/certs"

    def sign(self, claims: dict[str, Any], *, key=None, kid: str | None = None) -> str:
        return jwt.encode(claims, key or self.private_key, algorithm="RS256", headers={"kid": kid or self.kid})

    def scheduler_token(self, *, audience: str, email: str, lifetime_s: int = 3600, **overrides) -> str:
        """An OIDC ID token as Cloud Scheduler presents it."""
        now = int(time.time())
        claims = {"iss": "https://accounts.google.com", "aud": audience, "sub": "1234567890", "email": email,
                  "email_verified": True, "iat": now, "exp": now + lifetime_s, **overrides}
        return self.sign(claims)

    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    def stop(self) -> None:
        self._server.shutdown()
