"""Every environment variable the SDK and its CLI read, named once (README: "Environment").

Each is the licensee's to set, so none of them decides what is trusted: the SDK never
reads root pins from the environment (only the CLI, the licensee's own tool, does).

    read by the SDK (and so by the CLI)
      CODITECT_LICENSE_SERVER      the server URL when `server=` / --server is not given
      CODITECT_ID_TOKEN            a static Firebase ID token when no `token_provider` / --token is given
      CODITECT_FINGERPRINT         an explicit hardware id source (fingerprint.py)
      CODITECT_WORKLOAD_ID         a workload identity as hardware id source (fingerprint.py)
      KUBERNETES_SERVICE_HOST, POD_NAMESPACE, POD_NAME, HOSTNAME   the pod, in Kubernetes
      CODITECT_LICENSE_CACHE_DIR   jwks cache, borrow tokens, CLI sessions (paths.py)
      XDG_CACHE_HOME (Linux/BSD), LOCALAPPDATA (Windows)            ... its default
      HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY, SSL_CERT_FILE, SSL_CERT_DIR   read by httpx
    read by the CLI only
      CODITECT_LICENSE_KEY         the license key when --key is not given
      CODITECT_FIREBASE_API_KEY    the Firebase web API key for `login`
      FIREBASE_AUTH_EMULATOR_HOST  `login` against the Firebase Auth emulator
      CODITECT_TRUSTED_ROOTS       comma-separated root thumbprints, added to --trusted-root
      CODITECT_LICENSE_CONFIG_DIR  the stored sign-in (paths.py)
      XDG_CONFIG_HOME (Linux/BSD), APPDATA (Windows)                ... its default
    set by the CLI for the command of `run`
      CODITECT_LEASE_TOKEN, CODITECT_LEASE_SESSION
"""

from __future__ import annotations

SERVER = "CODITECT_LICENSE_SERVER"
ID_TOKEN = "CODITECT_ID_TOKEN"
FINGERPRINT = "CODITECT_FINGERPRINT"
WORKLOAD_ID = "CODITECT_WORKLOAD_ID"
CACHE_DIR = "CODITECT_LICENSE_CACHE_DIR"
CONFIG_DIR = "CODITECT_LICENSE_CONFIG_DIR"

LICENSE_KEY = "CODITECT_LICENSE_KEY"
FIREBASE_API_KEY = "CODITECT_FIREBASE_API_KEY"
AUTH_EMULATOR = "FIREBASE_AUTH_EMULATOR_HOST"
TRUSTED_ROOTS = "CODITECT_TRUSTED_ROOTS"

LEASE_TOKEN = "CODITECT_LEASE_TOKEN"
LEASE_SESSION = "CODITECT_LEASE_SESSION"
