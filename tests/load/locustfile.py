"""Load test of the seat functions for Locust: the operation mix of scripts/bench, any environment.

    locust -f tests/load/locustfile.py --headless -u 1000 -r 50 -t 10m \
        --host https://europe-west1-PROJECT.cloudfunctions.net

Each simulated user is one tool on its own machine: it acquires a seat, heartbeats,
validates, and now and then releases, thinking 1-3 s between requests (LOAD_THINK_S).
Weights: acquire 10, heartbeat 50, release 5, validate 20 (LOAD_MIX, as scripts/bench's
--mix). A full license (409 NO_SEAT_AVAILABLE) and a lost session (410) are answers the
tool expects, not failures; anything else outside 2xx is a failure.

Where (one of):
    --host / LOAD_BASE_URL        every function at <base>/<name> (./scripts/dev, one gateway)
    LOAD_URL_TEMPLATE             one host per function: "https://{name}-abc-uc.a.run.app"
What:  LOAD_LICENSE_KEY           the license the users share (make one with licensectl)
Who (one of):
    LOAD_FIREBASE_API_KEY + LOAD_USER_EMAIL ("load-{n}@example.com") + LOAD_USER_PASSWORD
                                  real Firebase sign-in, one account per simulated user
                                  (targets that verify Google-signed tokens)
    LOAD_EMULATOR_PROJECT         unsigned emulator tokens (the local stack only: demo-*)
    LOAD_ID_TOKEN                 one token for every user

Target to hold (the seed documents'): 1,000 users, p99 < 100 ms, 0 failures. scripts/bench
gives single-box figures; Locust is what an operator points at staging.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import threading
import time
from typing import Any

from locust import HttpUser, between, events, task

_numbers = itertools.count(1)
_numbers_lock = threading.Lock()
MIX = {name: int(weight) for name, weight in (
    part.split("=") for part in os.environ.get("LOAD_MIX", "acquire=10,heartbeat=50,release=5,validate=20").split(","))}
THINK = tuple(float(x) for x in os.environ.get("LOAD_THINK_S", "1 3").split())
SIGN_IN = "https://identitytoolkit.googleapis.com/v1/accounts:signInWithPassword"


def _emulator_token(project: str, uid: str) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": f"https://securetoken.google.com/{project}", "aud": project, "sub": uid, "user_id": uid,
              "iat": now, "exp": now + 3600, "auth_time": now, "firebase": {"sign_in_provider": "custom"}}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


class Tool(HttpUser):
    wait_time = between(*THINK)

    def on_start(self) -> None:
        with _numbers_lock:
            self.number = next(_numbers)
        self.hardware_id = f"load-{os.getpid()}-{self.number}"
        self.license_key = os.environ["LOAD_LICENSE_KEY"]
        self.session_id: str | None = None
        self.headers = {"Authorization": f"Bearer {self._id_token()}"}

    def _id_token(self) -> str:
        if os.environ.get("LOAD_FIREBASE_API_KEY"):
            email = os.environ.get("LOAD_USER_EMAIL", "load-{n}@example.com").format(n=self.number)
            answer = self.client.post(f"{SIGN_IN}?key={os.environ['LOAD_FIREBASE_API_KEY']}", name="sign-in",
                                      json={"email": email, "password": os.environ["LOAD_USER_PASSWORD"],
                                            "returnSecureToken": True})
            answer.raise_for_status()
            return str(answer.json()["idToken"])
        if os.environ.get("LOAD_EMULATOR_PROJECT"):
            return _emulator_token(os.environ["LOAD_EMULATOR_PROJECT"], f"load-user-{self.number}")
        return os.environ["LOAD_ID_TOKEN"]

    def _url(self, name: str) -> str:
        template = os.environ.get("LOAD_URL_TEMPLATE")
        if template:
            return template.format(name=name)
        base = (os.environ.get("LOAD_BASE_URL") or self.host or "").rstrip("/")
        return f"{base}/{name}"

    def _post(self, name: str, body: dict[str, Any], expected: tuple[int, ...]) -> Any:
        with self.client.post(self._url(name), json=body, headers=self.headers, name=name,
                              catch_response=True) as answer:
            if answer.status_code in expected:
                answer.success()
            else:
                answer.failure(f"{answer.status_code} {answer.text[:200]}")
            return answer

    @task(MIX.get("acquire", 0))
    def acquire(self) -> None:
        answer = self._post("acquire", {"license_key": self.license_key, "hardware_id": self.hardware_id,
                                        "client": {"version": "locust"}}, (200, 201, 409))
        if answer.status_code in (200, 201):
            self.session_id = answer.json()["session_id"]

    @task(MIX.get("heartbeat", 0))
    def heartbeat(self) -> None:
        if self.session_id is None:
            return self.acquire()
        if self._post("heartbeat", {"session_id": self.session_id}, (200, 410)).status_code == 410:
            self.session_id = None  # the lease ran out while thinking: the tool re-acquires
        return None

    @task(MIX.get("release", 0))
    def release(self) -> None:
        if self.session_id is not None:
            self._post("release", {"session_id": self.session_id}, (200,))
            self.session_id = None

    @task(MIX.get("validate", 0))
    def validate(self) -> None:
        self._post("validate", {"license_key": self.license_key}, (200,))

    def on_stop(self) -> None:
        self.release()


@events.quitting.add_listener
def _judge(environment: Any, **_: Any) -> None:
    """Exit non-zero on any failure (the target is 0 failures)."""
    if environment.stats.total.fail_ratio > 0:
        environment.process_exit_code = 1
