"""Webhooks: how a notification is signed for a tenant's endpoint, where it may be sent, and
how often it is tried again. The deliverer and the client SDK's verifier share these rules.

The body is a notification's message (shared/domain/notifications.py `message()`: id, type,
time, tenant, license, data) as JSON, UTF-8. Four headers go with it:

    Coditect-Webhook-Id:         <event id>          the body's "id"
    Coditect-Webhook-Type:       <type>              the body's "type"
    Coditect-Webhook-Timestamp:  <unix seconds>      decimal digits, when this attempt was signed
    Coditect-Webhook-Signature:  v1=<hex>[,v1=<hex>] one per secret of the endpoint valid now

    <hex> = lowercase hex HMAC-SHA256(key = the secret as shown, "whsec_..." included, UTF-8;
                                     message = <timestamp> "." <the body's raw bytes>)

To verify (any language): take the raw body bytes as received (never a re-serialisation of
parsed JSON), compute the HMAC above with each secret the receiver holds, compare it in
constant time with every `v1=` entry (other schemes, `v2=` one day, are skipped), accept
if one matches, and refuse a timestamp more than 300 s from the receiver's clock: the
timestamp is signed, so a captured request cannot be replayed later under a fresh one.
Header names are case-insensitive (HTTP's rule). The id and type headers are not signed:
they let a receiver route without parsing, and the SDK refuses them if they differ from
the body's. Delivery is at least once: de-duplicate on the event id.

Each attempt is signed afresh (a new timestamp), so a retry a day later still verifies.

Secrets: ``whsec_<43 characters: 256 random bits, base64url>``, one per endpoint, shown
once to the administrator who made (or rotated) it. Unlike a machine key it cannot be
kept as a hash: the server needs the secret itself to compute an HMAC. Rotation makes a
new secret and keeps the old one valid for an overlap window; during it every delivery
carries both signatures (new first), so a receiver may switch at any moment of the window
(`signing_secrets`).

Where it may be sent (server-side request forgery: a tenant's administrator must not make
the service call its own metadata server or a neighbour on the private network):
`webhook_url_problem` when the URL is saved, and at every attempt `resolve_and_check`:
every address the host resolves to must be public, and the deliverer connects to one of
exactly the addresses checked (with the URL's host still the TLS server name and Host
header), so a name that resolves differently a moment later (DNS rebinding) gains
nothing. Redirects are not followed: their target escaped every check. Private targets
are allowed only in the local stack (`allow_private`), whose test receivers listen on
loopback.

Retries: see `RETRYABLE`, `next_attempt_delay_s` and `GIVE_UP_AFTER_S`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets as _secrets
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"
ID_HEADER = "Coditect-Webhook-Id"
TYPE_HEADER = "Coditect-Webhook-Type"
TIMESTAMP_HEADER = "Coditect-Webhook-Timestamp"
SIGNATURE_HEADER = "Coditect-Webhook-Signature"
SIGNATURE_SCHEME = "v1"
TOLERANCE_S = 300
"""How far a signed timestamp may lie from the receiver's clock, either way."""
URL_MAX = 2048

_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEADER_VALUE = re.compile(r"[\x21-\x7e]+")
"""What the id and type headers may carry: visible ASCII, no spaces, no CR/LF (no header injection)."""


def new_webhook_secret() -> str:
    """A new endpoint secret: shown once to the administrator, then only used to sign."""
    return SECRET_PREFIX + _secrets.token_urlsafe(32)


def signing_secrets(current: str, previous: str | None, previous_valid_until_s: int | None,
                    now_s: int) -> list[str]:
    """The secrets an endpoint signs with at `now_s`: its current one, and during a
    rotation's overlap (until `previous_valid_until_s`, exclusive) the one it replaced."""
    if previous and previous_valid_until_s is not None and now_s < previous_valid_until_s:
        return [current, previous]
    return [current]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `v1` signature: hex HMAC-SHA256 keyed with the secret over `<timestamp>.<body>`."""
    return hmac.new(secret.encode(), b"%d." % timestamp + bytes(body), hashlib.sha256).hexdigest()


def _secret_list(secrets: Sequence[str]) -> list[str]:
    if isinstance(secrets, str):
        secrets = [secrets]
    listed = list(dict.fromkeys(secrets))
    if not listed or not all(isinstance(s, str) and s for s in listed):
        raise ValueError("at least one secret, each a non-empty string, is needed")
    return listed


def signature_headers(body: bytes, event_id: str, event_type: str, secrets: Sequence[str],
                      now_s: int) -> dict[str, str]:
    """The headers of one delivery attempt of `body`, signed at `now_s` with every secret of
    `secrets` (those valid now, new first: `signing_secrets`)."""
    for name, value in (("event id", event_id), ("event type", event_type)):
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            raise ValueError(f"{name} must be visible ASCII without spaces: {value!r}")
    if isinstance(now_s, bool) or not isinstance(now_s, int) or now_s < 0:
        raise ValueError(f"now_s must be whole Unix seconds: {now_s!r}")
    signatures = ",".join(f"{SIGNATURE_SCHEME}={signature(s, now_s, body)}" for s in _secret_list(secrets))
    return {ID_HEADER: event_id, TYPE_HEADER: event_type, TIMESTAMP_HEADER: str(now_s), SIGNATURE_HEADER: signatures}


class WebhookSignatureError(ValueError):
    """A delivery that does not verify. `reason` is one of REASONS; the message says more."""

    REASONS = ("missing_header", "malformed_header", "no_matching_signature", "timestamp_out_of_tolerance")

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _header(headers: Mapping[str, str], name: str) -> str:
    """The value of header `name`, whatever the case of the names in `headers`."""
    wanted = name.lower()
    found = [value for key, value in headers.items() if isinstance(key, str) and key.lower() == wanted]
    if not found:
        raise WebhookSignatureError("missing_header", f"missing header {name}")
    if len(set(found)) > 1:
        raise WebhookSignatureError("malformed_header", f"header {name} given more than once, with different values")
    if not isinstance(found[0], str):
        raise WebhookSignatureError("malformed_header", f"header {name} is not text")
    return found[0].strip()


def _signatures(value: str) -> list[str]:
    """The `v1` entries of a signature header (entries of other schemes are skipped)."""
    v1 = []
    for entry in value.split(","):
        scheme, equals, digest = entry.strip().partition("=")
        if not equals or not scheme or not digest:
            raise WebhookSignatureError("malformed_header",
                                        f"header {SIGNATURE_HEADER}: entry {entry.strip()!r} is not scheme=value")
        if scheme == SIGNATURE_SCHEME:
            if not _HEX_SHA256.fullmatch(digest.lower()):
                raise WebhookSignatureError("malformed_header", f"header {SIGNATURE_HEADER}: a v1 signature is "
                                            "64 hex digits")
            v1.append(digest.lower())
    if not v1:
        raise WebhookSignatureError("malformed_header", f"header {SIGNATURE_HEADER} has no v1 signature")
    return v1


def verify_signature(body: bytes, headers: Mapping[str, str], secrets: Sequence[str], *, now_s: int,
                     tolerance_s: int = TOLERANCE_S) -> int:
    """Check a delivery: one `v1` signature made with one of `secrets` over this timestamp and
    body, and a timestamp within `tolerance_s` of `now_s`. Returns the signed timestamp.

    The signature is checked before the time, so `timestamp_out_of_tolerance` only ever
    names a genuine delivery that is too old (a replay) or a clock that is off.

    Raises:
        WebhookSignatureError: naming what failed (its `reason`).
        ValueError: no secret given, or a negative tolerance (the receiver's mistake, not the sender's).
    """
    keys = _secret_list(secrets)
    if tolerance_s < 0:
        raise ValueError("tolerance_s must be >= 0")
    stamp = _header(headers, TIMESTAMP_HEADER)
    if not _TIMESTAMP.fullmatch(stamp):
        raise WebhookSignatureError("malformed_header", f"header {TIMESTAMP_HEADER} is not Unix seconds: {stamp!r}")
    timestamp = int(stamp)
    given = _signatures(_header(headers, SIGNATURE_HEADER))
    expected = [signature(key, timestamp, body) for key in keys]
    if not any(hmac.compare_digest(e, g) for e in expected for g in given):
        raise WebhookSignatureError("no_matching_signature", "no signature matches the body and timestamp with the "
                                    f"secret{'s' if len(keys) > 1 else ''} given")
    if abs(now_s - timestamp) > tolerance_s:
        raise WebhookSignatureError("timestamp_out_of_tolerance", f"signed at {timestamp}, {abs(now_s - timestamp)} s "
                                    f"from now ({now_s}): more than the {tolerance_s} s tolerated")
    return timestamp


# --- where a webhook may be sent -----------------------------------------------------------

_METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog"})
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})


def host_problem(host: str, *, allow_private: bool = False) -> str | None:
    """Why a host name may not receive webhooks, or None. Cloud metadata names are refused
    always; `localhost` (and `*.localhost`) and other `.internal` names unless
    `allow_private`; a name that is all digits in its last label (`127.1`, `2130706433`,
    `0x7f.1`: resolvers read these as IPv4 addresses) always."""
    name = host.lower().rstrip(".")
    if not name:
        return "no host"
    if name in _METADATA_HOSTS:
        return f"{host} is a cloud metadata server"
    if not allow_private:
        if name == "localhost" or name.endswith(".localhost"):
            return f"{host} is this machine (loopback)"
        if name.endswith(".internal"):
            return f"{host} is an internal name"
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    last = name.rsplit(".", 1)[-1]
    if last.isdigit() or re.fullmatch(r"0x[0-9a-f]*", last):
        return f"{host} is neither a host name nor an IP address in its usual form"
    return None


def _v4_problem(ip: ipaddress.IPv4Address) -> str | None:
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip in _METADATA_ADDRESSES:
        return "the cloud metadata address (link-local)"
    if ip.is_link_local:
        return "a link-local address"
    if ip in _CGNAT:
        return "a shared (CGNAT, RFC 6598) address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return ("a private address (RFC 1918)" if any(ip in ipaddress.IPv4Network(n) for n in
                                                      ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
                else "a special-purpose address, not public")
    if not ip.is_global:
        return "not a public address"
    return None


def _v6_problem(ip: ipaddress.IPv6Address) -> str | None:
    embedded = ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64
                                                   else None)
    if embedded is not None:
        inner = _v4_problem(embedded)
        return f"an IPv6 form of {embedded}, {inner}" if inner else None
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip in _METADATA_ADDRESSES:
        return "the cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_site_local or ip in ipaddress.IPv6Network("fc00::/7"):
        return "a private (unique local) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private or not ip.is_global:
        return "a special-purpose address, not public"
    return None


def address_problem(ip: str, *, allow_private: bool) -> str | None:
    """Why a webhook may not be sent to address `ip`, or None: anything but a public unicast
    address is refused unless `allow_private` (the local stack). IPv6 forms of an IPv4
    address (mapped, 6to4, NAT64) are judged by the address they carry."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return f"{ip!r} is not an IP address"
    if allow_private:
        return None
    problem = _v4_problem(address) if isinstance(address, ipaddress.IPv4Address) else _v6_problem(address)
    return f"{ip} is {problem}" if problem else None


def webhook_url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why `url` may not be a webhook endpoint, or None. https only (http only with
    `allow_private`: the local stack's receivers), printable ASCII (IDNA-encode a
    non-ASCII host), a host and no user info, no fragment, at most URL_MAX characters. A
    host that is an IP address must be public (`address_problem`); a name is checked again,
    by what it resolves to, at every attempt (`resolve_and_check`)."""
    if not isinstance(url, str) or not url:
        return "no URL"
    if len(url) > URL_MAX:
        return f"longer than {URL_MAX} characters"
    if any(not "\x21" <= c <= "\x7e" for c in url):
        return "only printable ASCII without spaces (IDNA-encode a non-ASCII host, percent-encode the rest)"
    if "#" in url:
        return "a fragment (#...) is never sent to a server: remove it"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return f"not a URL: {error}"
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_private):
        return "must be https://" + ("" if scheme != "http" else " (plain http:// only in the local stack)")
    if "@" in parts.netloc:
        return "user info (user:password@) is not allowed: authenticate with the signature"
    host = parts.hostname
    if not host:
        return "no host"
    if port == 0:
        return "port 0"
    problem = host_problem(host, allow_private=allow_private)
    if problem:
        return problem
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return address_problem(host, allow_private=allow_private)


class WebhookAddressError(ValueError):
    """A webhook host that may not be called: `host`, the `address` at fault (None when the
    name itself is refused or did not resolve) and `problem`, why."""

    def __init__(self, host: str, address: str | None, problem: str):
        where = f"{host} resolves to {address}" if address is not None and address != host else host
        super().__init__(f"webhook host refused: {where}: {problem}")
        self.host, self.address, self.problem = host, address, problem


Resolver = Callable[[str, int], Iterable[tuple[Any, ...]]]
"""`socket.getaddrinfo` as called: (host, port) -> (family, type, proto, canonname, sockaddr) tuples."""


def resolve_and_check(host: str, port: int, *, allow_private: bool,
                      resolver: Resolver = socket.getaddrinfo) -> list[str]:
    """Every address `host` resolves to, in the resolver's order without repeats, each checked
    by `address_problem`: the deliverer connects to one of these and no other address.
    One bad address refuses the host, even beside public ones (a name that answers with
    both could be steered to either).

    Raises:
        WebhookAddressError: the name is refused, it does not resolve, or an address is refused.
    """
    problem = host_problem(host, allow_private=allow_private)
    if problem:
        raise WebhookAddressError(host, None, problem)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"not a port: {port!r}")
    try:
        answers = list(resolver(host, port))
    except (OSError, UnicodeError) as error:
        raise WebhookAddressError(host, None, f"does not resolve ({error})") from None
    addresses = list(dict.fromkeys(str(answer[4][0]) for answer in answers))
    if not addresses:
        raise WebhookAddressError(host, None, "resolves to no address")
    for address in addresses:
        problem = address_problem(address, allow_private=allow_private)
        if problem:
            raise WebhookAddressError(host, address, problem)
    return addresses


# --- when to try again ---------------------------------------------------------------------

FIRST_RETRY_DELAY_S = 30
MAX_RETRY_DELAY_S = 3600
GIVE_UP_AFTER_S = 24 * 3600
"""No attempt is made later than this after the first: the delivery is then given up."""


def delivered(status: int | None) -> bool:
    """The endpoint took it: a 2xx, or a 3xx (not followed: see the module's docstring)."""
    return status is not None and 200 <= status < 400


def RETRYABLE(status: int | None) -> bool:
    """Whether a failed attempt is tried again. None (no answer: timeout, refused or reset
    connection, TLS failure, address refused by DNS), any 5xx, 408 and 429: yes, later.
    Any other 4xx: no, the endpoint refuses it and will again. A 2xx or 3xx is no failure
    (`delivered`): nothing to retry. Anything else (1xx as final, >= 600): a broken
    answer, treated as no answer."""
    if status is None:
        return True
    if delivered(status):
        return False
    if 400 <= status < 500:
        return status in (408, 429)
    return True


def next_attempt_delay_s(attempt: int) -> int:
    """Seconds to wait after attempt number `attempt` (the first is 1) failed retryably:
    30 s, doubling each time, at most an hour per wait (the deliverer may add jitter).

        after attempt     1     2      3      4       5       6       7        8, 9, ...
        wait (s)         30    60    120    240     480     960    1920     3600
        next attempt at  30 s  1.5 m  3.5 m  7.5 m  15.5 m  31.5 m  63.5 m  2 h 3.5 m, 3 h 3.5 m, ...

    (times from the first attempt). The last within GIVE_UP_AFTER_S is at 23 h 3.5 m: 30
    attempts in all, then the delivery is given up (`attempt_times_s`)."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise ValueError(f"attempts are numbered from 1: {attempt!r}")
    return min(FIRST_RETRY_DELAY_S << min(attempt - 1, 20), MAX_RETRY_DELAY_S)


def attempt_times_s() -> list[int]:
    """When each attempt is made, in seconds from the first (0), while every one fails
    retryably: the schedule `next_attempt_delay_s` makes within GIVE_UP_AFTER_S."""
    times = [0]
    while times[-1] + next_attempt_delay_s(len(times)) <= GIVE_UP_AFTER_S:
        times.append(times[-1] + next_attempt_delay_s(len(times)))
    return times
