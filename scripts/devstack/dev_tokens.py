"""Firebase Auth emulator ID tokens for the local stack.

firebase-admin in emulator mode (FIREBASE_AUTH_EMULATOR_HOST set) accepts unsigned
tokens whose `aud` is the project and `iss` is securetoken/<project>; these are those.
They are worthless anywhere else: production verification demands Google's signature.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()


def emulator_id_token(project_id: str, uid: str, *, email: str | None = None, email_verified: bool = True,
                      lifetime_s: int = 3600, **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": f"https://securetoken.google.com/{project_id}",
        "aud": project_id,
        "sub": uid,
        "user_id": uid,
        "auth_time": now,
        "iat": now,
        "exp": now + lifetime_s,
        "firebase": {"identities": {}, "sign_in_provider": "custom"},
        **claims,
    }
    if email is not None:
        payload.update(email=email, email_verified=email_verified)
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."
