"""`coditect-license`: seats, borrows and lease tokens from the command line.

    coditect-license fingerprint                  this machine's hardware id
    coditect-license login --email E              sign in (Firebase Auth); refresh token stored 0600
    coditect-license status                       what is held here, and the license's seats
    coditect-license acquire [--hold] [--wait T]  take a seat (--hold: keep it until Ctrl-C)
    coditect-license release                      give the seat back
    coditect-license borrow --duration 8h         check the seat out for offline use
    coditect-license return                       give a borrowed seat back early
    coditect-license verify TOKEN                 verify a lease token offline
    coditect-license verify-statement FILE        verify a signed usage statement offline
    coditect-license run -- CMD ...               hold a seat while CMD runs

`--wait T` (acquire, borrow, run; T as 30s, 10m, 1h or plain seconds) waits that long for
a seat when all are taken: in the license's wait queue if it has one, showing the place
in line on stderr as it moves ("waiting in the queue: 3rd of 5"); the place is given up
when the time runs out, on Ctrl-C and on SIGTERM.

Messages are for people: the server's own wording (no status codes), durations as the
user typed them, and a vendor's support line (`support: ...`) when a refusal carries one.

Options may come before or after the command. Settings from the environment (all of
them: environment.py): CODITECT_LICENSE_SERVER, CODITECT_LICENSE_KEY, CODITECT_ID_TOKEN (a
static ID token, e.g. in CI; the SDK honours it too), CODITECT_FIREBASE_API_KEY,
FIREBASE_AUTH_EMULATOR_HOST, CODITECT_TRUSTED_ROOTS. Exit codes: EXIT_CODES.

Trusted roots: anything verified offline (`verify`, `verify-statement`, `status --offline`,
a borrowed seat while the server is unreachable) needs the thumbprints of the root keys to trust:
`--trusted-root THUMBPRINT` (repeatable) or CODITECT_TRUSTED_ROOTS (comma-separated).
The SDK itself never reads pins from the environment (a licensee sets it); the CLI does,
because it is the licensee's own tool, run on the licensee's behalf.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import httpx

from coditect_license import borrows, environment, fingerprint, paths
from coditect_license._version import __version__
from coditect_license.errors import (
    AuthError,
    LicenseError,
    NetworkError,
    NoLease,
    NoSeatAvailable,
    TokenInvalid,
    TrustNotPinned,
    UserSessionLimit,
)
from coditect_license.identity import (
    GOOGLE_IDENTITY_TOOLKIT,
    GOOGLE_SECURE_TOKEN,
    FirebaseAuthProvider,
    StaticTokenProvider,
    TokenProvider,
)
from coditect_license.jwks import JwksCache
from coditect_license.lease import Lease
from coditect_license.lease_options import LeaseOptions
from coditect_license.lease_state import LeaseState
from coditect_license.seat_queue import gave_up_message, ordinal
from coditect_license.statements import INT_FIGURES, NUMBER_FIGURES, verify_statement
from coditect_license.tokens import LeaseClaims, root_kid_of, trusted_root_set, unverified_claims
from coditect_license.transport import ApiClient, RetryPolicy, checked_server_url

ENV_SERVER = environment.SERVER
ENV_KEY = environment.LICENSE_KEY
ENV_TOKEN = environment.ID_TOKEN
ENV_API_KEY = environment.FIREBASE_API_KEY
ENV_AUTH_EMULATOR = environment.AUTH_EMULATOR
ENV_TRUSTED_ROOTS = environment.TRUSTED_ROOTS

# One exit code per outcome, stable for scripts (README: "Exit codes").
EXIT_CODES: dict[str, int] = {
    "OK": 0,
    "ERROR": 1,               # anything not listed
    "USAGE": 2,               # bad command line
    "NETWORK": 3,             # the server could not be reached
    "UNAUTHENTICATED": 4,     # the server refused the ID token
    "AUTH_FAILED": 5,         # sign-in / token refresh failed, or not signed in
    "FORBIDDEN": 6,
    "LICENSE_SUSPENDED": 7,
    "LICENSE_NOT_FOUND": 8,
    "SESSION_NOT_FOUND": 9,
    "NO_SEAT_AVAILABLE": 10,
    "USER_SESSION_LIMIT": 11,
    "LICENSE_EXPIRED": 12,
    "SESSION_EXPIRED": 13,
    "RATE_LIMITED": 14,
    "UNAVAILABLE": 15,
    "INVALID_REQUEST": 16,
    "BORROW_NOT_ALLOWED": 17,
    "TOKEN_INVALID": 18,
    "TOKEN_EXPIRED": 19,
    "NO_LEASE": 20,
    "LEASE_LOST": 21,
    "ALREADY_BORROWED": 22,
    "TRUST_NOT_PINNED": 23,   # offline verification asked, but no --trusted-root / CODITECT_TRUSTED_ROOTS
    "GROUP_SEAT_LIMIT": 10,   # no seat for the caller's group: as NO_SEAT_AVAILABLE
    "NOT_FOUND": 9,
}
_VALIDATE_CODES = {"SUSPENDED": "LICENSE_SUSPENDED", "EXPIRED": "LICENSE_EXPIRED",
                   "NO_SEAT_AVAILABLE": "NO_SEAT_AVAILABLE"}


class UsageError(Exception):
    pass


def exit_code(error: LicenseError) -> int:
    return EXIT_CODES.get(error.code, 1)


# -- output ---------------------------------------------------------------------------
def _when(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    delta = epoch - time.time()
    rel = f"in {_duration(delta)}" if delta >= 0 else f"{_duration(-delta)} ago"
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S')} UTC ({rel})"


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60}m"
    if s >= 60:
        return f"{s // 60}m {s % 60}s"
    return f"{s}s"


class Output:
    def __init__(self, as_json: bool):
        self.as_json = as_json

    def result(self, data: dict[str, Any], lines: list[str]) -> None:
        if self.as_json:
            print(json.dumps(data, indent=2, sort_keys=True, default=str))
        else:
            for line in lines:
                print(line)
        sys.stdout.flush()

    def note(self, message: str) -> None:
        if not self.as_json:
            print(message, flush=True)

    def error(self, code: str, message: str, status: int, *, support_line: str | None = None, **extra: Any) -> int:
        if self.as_json:
            print(json.dumps({"error": {"code": code, "message": message, "exit_code": status, **extra}},
                             indent=2, sort_keys=True, default=str), flush=True)
        print(f"coditect-license: {message} [{code}]", file=sys.stderr, flush=True)
        if support_line:
            print(f"support: {support_line}", file=sys.stderr, flush=True)
        return status

    def progress(self, message: str) -> None:
        """A step of a long wait, on stderr (stdout keeps the result, JSON or not)."""
        print(message, file=sys.stderr, flush=True)


def _plural(n: int | None, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _printable(text: str | None) -> str | None:
    """A line from the server, safe for a terminal: no control characters (escape sequences)."""
    if not text:
        return None
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return cleaned or None


def _refusal(error: NoSeatAvailable, message: str) -> str:
    """Why no seat, as people say it: the server's message (plain words, real plurals),
    or one built from the counts when it sent none."""
    if isinstance(error, UserSessionLimit):
        return (f"you already hold {_plural(error.seats_used, 'session')} of this license, the most it allows "
                "per user; release one on another machine first")
    if message and not message.startswith("HTTP "):
        return message
    if error.seats_max == 1:
        return "the license's only seat is in use; try again later"
    return f"all {_plural(error.seats_max, 'seat')} of this license are in use; try again later"


def _human_error(error: LicenseError, *, waited_as: str | None = None) -> str:
    """The message for people: no status codes; waits in the unit the user typed (`waited_as`)."""
    if isinstance(error, NoSeatAvailable):
        if error.waited_s is not None:  # acquire(wait_s=...) gave up
            reason = _refusal(error, error.reason) if error.reason else None
            return gave_up_message(waited_as or _duration(error.waited_s), position=error.queue_position,
                                   queue_length=error.queue_length, reason=reason)
        return _refusal(error, error.message)
    messages = {
        "NETWORK": f"cannot reach the license server: {error.message}",
        "UNAUTHENTICATED": f"the server did not accept your sign-in ({error.message}); run `coditect-license login`",
        "AUTH_FAILED": f"sign-in failed: {error.message}",
        "LICENSE_NOT_FOUND": "no license has this key (check it for typos)",
        "LICENSE_SUSPENDED": "the license is suspended; contact its administrator",
        "LICENSE_EXPIRED": "the license has expired",
        "BORROW_NOT_ALLOWED": "this license does not allow borrowing seats",
        "RATE_LIMITED": f"too many requests; retry in {int(error.retry_after or 1)} s",
        "UNAVAILABLE": f"the license service is temporarily unavailable: {error.message}",
    }
    message = messages.get(error.code, error.message)
    if error.code == "INVALID_REQUEST" and "max_borrow_s" in error.details:
        message = f"{error.message} (this license allows at most {error.details['max_borrow_s']} s)"
    return message


# -- settings -------------------------------------------------------------------------
def _credentials_path():
    return paths.config_dir() / "credentials.json"


def _server(args: argparse.Namespace) -> str:
    server = args.server or os.environ.get(ENV_SERVER)
    if not server:
        raise UsageError(f"no license server: pass --server URL or set {ENV_SERVER}")
    try:
        return checked_server_url(server)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _trusted_roots(args: argparse.Namespace) -> list[str] | None:
    """The pinned root thumbprints: every --trusted-root and CODITECT_TRUSTED_ROOTS (None: none)."""
    given = list(getattr(args, "trusted_root", None) or [])
    given += os.environ.get(ENV_TRUSTED_ROOTS, "").split(",")
    pins = sorted({pin.strip() for pin in given if pin.strip()})
    if not pins:
        return None
    try:
        trusted_root_set(pins)
    except ValueError as exc:
        raise UsageError(f"--trusted-root / {ENV_TRUSTED_ROOTS}: {exc}") from None
    return pins


def _missing_pins(what: str) -> TrustNotPinned:
    return TrustNotPinned(f"{what} needs the root keys to trust: pass --trusted-root THUMBPRINT (repeatable) or set "
                          f"{ENV_TRUSTED_ROOTS} (the RFC 7638 thumbprints, i.e. the kids of the vendor's GET /jwks)")


def _key(args: argparse.Namespace) -> str:
    key = args.key or os.environ.get(ENV_KEY)
    if not key:
        raise UsageError(f"no license key: pass --key KEY or set {ENV_KEY}")
    return key.strip()


def _provider(args: argparse.Namespace) -> TokenProvider:
    token = args.token or os.environ.get(ENV_TOKEN)
    if token:
        return StaticTokenProvider(token)
    stored = paths.read_json(_credentials_path())
    if not isinstance(stored, dict) or not stored.get("refresh_token"):
        raise AuthError("not signed in: run `coditect-license login` (or pass --token / set CODITECT_ID_TOKEN)",
                        permanent=True)

    def keep(refresh_token: str) -> None:
        paths.write_json(_credentials_path(), {**stored, "refresh_token": refresh_token})

    return FirebaseAuthProvider(stored["api_key"], refresh_token=stored["refresh_token"],
                                identitytoolkit_url=stored.get("identitytoolkit_url", GOOGLE_IDENTITY_TOOLKIT),
                                securetoken_url=stored.get("securetoken_url", GOOGLE_SECURE_TOKEN),
                                on_refresh_token=keep)


def _api(args: argparse.Namespace, *, auth: bool = True) -> ApiClient:
    return ApiClient(_server(args), _provider(args) if auth else None, timeout_s=args.timeout,
                     retry=RetryPolicy(attempts=3, deadline_s=max(5.0, args.timeout * 2)))


def _license(args: argparse.Namespace, *, release_at_exit: bool = True, on_lost: Callable[..., object] | None = None,
             on_regained: Callable[..., object] | None = None,
             on_state_change: Callable[..., object] | None = None) -> Lease:
    """The lease of the command line's key. `release_at_exit=False`: the seat outlives this process."""
    options = LeaseOptions(timeout_s=args.timeout, retry=RetryPolicy(attempts=3, deadline_s=max(5.0, args.timeout * 2)),
                           client_version=f"coditect-license-cli/{__version__}",
                           handle_signals=release_at_exit, release_at_exit=release_at_exit)
    return Lease(_key(args), server=_server(args), token_provider=_provider(args), trusted_roots=_trusted_roots(args),
                 on_lost=on_lost, on_regained=on_regained, on_state_change=on_state_change, options=options)


def _parse_duration(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text or "")
    if not match:
        raise UsageError(f"bad duration {text!r}: use seconds or e.g. 90m, 8h, 2d")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


@dataclass(frozen=True)
class WaitTime:
    """`--wait`: how long, and how the user wrote it (messages say it back the same way)."""

    seconds: float
    text: str


def _wait_time(text: str) -> WaitTime:
    """An argparse type: 30s, 10m, 1h, 1d, or plain seconds (2.5 too)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: use e.g. 30s, 10m, 1h (or seconds)")
    number, unit = match.group(1), match.group(2)
    seconds = float(number) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    return WaitTime(seconds, f"{number}{unit or 's'}")


def _waited_as(args: argparse.Namespace) -> str | None:
    wait = getattr(args, "wait", None)
    return wait.text if isinstance(wait, WaitTime) else None


def _take_seat(lease: Lease, args: argparse.Namespace, out: Output) -> Lease:
    """`lease.acquire()`, waiting as `--wait` says: the place in line shown on stderr as it
    moves; SIGTERM (as Ctrl-C) ends the wait, and the place is given up."""
    wait: WaitTime | None = getattr(args, "wait", None)
    if wait is None or wait.seconds <= 0:
        return lease.acquire()
    queued_at: list[float] = []

    def show(position: int, queue_length: int) -> None:
        if not queued_at:
            queued_at.append(time.monotonic())
        out.progress(f"waiting in the queue: {ordinal(position)} of {queue_length}")

    def stop_waiting(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop_waiting) if on_main else None
    try:
        lease.acquire(wait_s=wait.seconds, on_queued=show)
    finally:
        if on_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if queued_at:
        out.progress(f"got a seat after {_duration(time.monotonic() - queued_at[0])} in the queue")
    return lease


def _claims_lines(claims: LeaseClaims, indent: str = "  ") -> list[str]:
    lines = [
        f"{indent}license:   {claims.license_id} (tier {claims.tier or '-'}; features: "
        f"{', '.join(claims.features) or '-'})",
        f"{indent}session:   {claims.session_id}",
        f"{indent}user:      {claims.uid} on {claims.hardware_id[:24]}...",
        f"{indent}expires:   {_when(claims.expires_at)}" + (" [borrowed]" if claims.borrowed else ""),
    ]
    if claims.grace_s:
        lines.append(f"{indent}offline grace: {claims.grace_s} s (valid offline until {_when(claims.valid_until)})")
    return lines


# -- commands --------------------------------------------------------------------------
def cmd_fingerprint(args: argparse.Namespace, out: Output) -> int:
    found = fingerprint.compute()
    data = {"hardware_id": found.hardware_id, "source": found.source}
    lines = [found.hardware_id] + ([f"source: {found.source}"] if args.details else [])
    out.result(data, lines)
    return 0


def cmd_login(args: argparse.Namespace, out: Output) -> int:
    api_key = args.api_key or os.environ.get(ENV_API_KEY)
    emulator = args.auth_emulator or os.environ.get(ENV_AUTH_EMULATOR)
    if not api_key:
        if not emulator:
            raise UsageError(f"pass --api-key (the Firebase web API key) or set {ENV_API_KEY}")
        api_key = "emulator-api-key"
    if emulator:
        provider = FirebaseAuthProvider.for_emulator(emulator, api_key)
    else:
        provider = FirebaseAuthProvider(api_key, identitytoolkit_url=args.identitytoolkit_url,
                                        securetoken_url=args.securetoken_url)
    if args.custom_token:
        provider.sign_in_custom_token(args.custom_token)
    else:
        email = args.email or (input("email: ") if sys.stdin.isatty() else None)
        if not email:
            raise UsageError("pass --email (or --custom-token)")
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        elif sys.stdin.isatty():
            password = getpass.getpass("password: ")
        else:
            raise UsageError("no terminal to ask the password: use --password-stdin")
        provider.sign_in_password(email, password)
    record = {"api_key": api_key, "identitytoolkit_url": provider.identitytoolkit_url,
              "securetoken_url": provider.securetoken_url, "refresh_token": provider.refresh_token,
              "uid": provider.uid, "email": provider.email, "signed_in_at": int(time.time())}
    path = _credentials_path()
    paths.write_json(path, record)
    who = provider.email or provider.uid or "user"
    out.result({"signed_in": True, "uid": provider.uid, "email": provider.email, "credentials": str(path)},
               [f"signed in as {who}; credentials stored in {path} (mode 0600)"])
    return 0


def cmd_logout(args: argparse.Namespace, out: Output) -> int:
    removed = paths.remove(_credentials_path())
    out.result({"signed_out": removed}, ["signed out" if removed else "was not signed in"])
    return 0


def _stored(path) -> dict[str, Any] | None:
    return borrows.load(path)


def _verify_stored(record: dict[str, Any], server: str, *, offline: bool, api: ApiClient | None,
                   trusted_roots: list[str] | None) -> dict[str, Any]:
    cache = JwksCache(server, trusted_roots=trusted_roots, fetch=None if offline or api is None else api.jwks)
    try:
        claims = cache.verify(record["token"], hardware_id=fingerprint.hardware_id())
        return {"valid": True, "claims": claims.as_dict(), "_claims": claims}
    except TokenInvalid as exc:
        return {"valid": False, "reason": exc.message, "code": exc.code}


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    key = _key(args)
    server = args.server or os.environ.get(ENV_SERVER)
    trusted_roots = _trusted_roots(args)
    if (args.offline or not server) and trusted_roots is None:
        raise _missing_pins("status --offline" if args.offline else "status with no server")
    found = fingerprint.compute()
    data: dict[str, Any] = {"hardware_id": found.hardware_id, "fingerprint_source": found.source}
    lines = [f"machine:   {found.hardware_id[:40]}... ({found.source})"]
    usable = False
    api = None if args.offline or not server else _api(args, auth=False)
    for kind, path in (("borrow", borrows.borrow_file(key)), ("session", borrows.session_file(key))):
        record = _stored(path)
        if record is None:
            continue
        check = _verify_stored(record, record.get("server") or server or "", offline=args.offline, api=api,
                               trusted_roots=trusted_roots)
        claims = check.pop("_claims", None)
        data[kind] = {**check, "server": record.get("server"), "session_id": record.get("session_id")}
        if claims is not None:
            usable = True
            lines.append(f"{kind}: valid{' (offline, no network needed)' if kind == 'borrow' else ''}")
            lines += _claims_lines(claims)
        else:
            lines.append(f"{kind}: stored but not usable: {check['reason']}")
    if "borrow" not in data and "session" not in data:
        lines.append("held here: nothing (no stored session or borrow)")
    if args.offline or not server:
        data["server"] = None
    else:
        try:
            answer = _api(args).post("validate", {"license_key": key})
            data["server"] = answer
            seats = answer.get("seats", {})
            lic = answer.get("license", {})
            lines.append(f"license:   {lic.get('id')} {answer.get('code')} — {seats.get('used')}/{seats.get('max')} "
                         f"seats in use; tier {lic.get('tier')}; expires {lic.get('expires_at') or 'never'}")
            if answer.get("valid"):
                usable = True
            elif not usable:
                code = _VALIDATE_CODES.get(str(answer.get("code")), "ERROR")
                data["usable"] = False
                out.result(data, lines)
                return EXIT_CODES.get(code, 1)
        except LicenseError as exc:
            data["server"] = {"error": {"code": exc.code, "message": exc.message}}
            lines.append(f"server:    {_human_error(exc)}")
            support = _printable(exc.support)
            if support:
                lines.append(f"support:   {support}")
            if not usable:
                data["usable"] = False
                out.result(data, lines)
                return exit_code(exc)
    data["usable"] = usable
    out.result(data, lines)
    return 0 if usable else EXIT_CODES["NO_LEASE"]


def cmd_acquire(args: argparse.Namespace, out: Output) -> int:
    key = _key(args)
    if args.hold:
        return _hold(args, out, key)
    lease = _take_seat(_license(args, release_at_exit=False), args, out)
    claims = lease.claims
    assert claims is not None  # acquire() holds a token or raises
    if lease.state == LeaseState.BORROWED:
        out.result({"borrowed": True, "session_id": lease.session_id, "claims": claims.as_dict()},
                   ["this machine holds a borrowed seat (no new seat taken):"] + _claims_lines(claims))
        lease.detach()
        return 0
    record = lease.detach()
    borrows.save(borrows.session_file(key), record)
    seats = lease.seats or {}
    kind = [f"an overage seat (beyond the license's {_plural(seats.get('max'), 'seat')})"] if lease.overage else []
    kind += [f"a seat reserved for group {lease.reserved_for}"] if lease.reserved_for else []
    out.result({"session_id": lease.session_id, "token": lease.token, "claims": claims.as_dict(), "seats": seats,
                "heartbeat_interval_s": lease.heartbeat_interval_s, "overage": lease.overage,
                "reserved_for": lease.reserved_for},
               [f"seat acquired ({seats.get('used')}/{seats.get('max')} in use)"
                + (f": {'; '.join(kind)}" if kind else "")] + _claims_lines(claims) +
               ["  nothing heartbeats it: it ends at its expiry unless released "
                "(`coditect-license release`); use --hold to keep it"])
    return 0


def _hold(args: argparse.Namespace, out: Output, key: str) -> int:
    stop = threading.Event()
    lost = threading.Event()

    def changed(lease: Lease, old: LeaseState, new: LeaseState) -> None:
        if old not in (LeaseState.IDLE, LeaseState.ACQUIRING):  # the start is said once, below
            out.note(f"{time.strftime('%H:%M:%S')} lease {old.value} -> {new.value}")

    lease = _license(args, on_state_change=changed, on_lost=lambda *_: lost.set(),
                     on_regained=lambda *_: lost.clear())

    def ask_stop(signum: int, frame: Any) -> None:
        stop.set()

    _take_seat(lease, args, out)  # Ctrl-C / SIGTERM while waiting end the wait
    for name in ("SIGTERM", "SIGINT"):
        signal.signal(getattr(signal, name), ask_stop)
    with lease:
        claims = lease.claims
        assert claims is not None
        out.note(f"holding seat {lease.session_id} (heartbeat every {lease.heartbeat_interval_s:.0f} s); "
                 "Ctrl-C releases it")
        if out.as_json:
            out.result({"session_id": lease.session_id, "claims": claims.as_dict()}, [])
        while not stop.wait(0.5):
            if args.exit_on_lost and lost.is_set():
                break
    out.note("seat released")
    return EXIT_CODES["LEASE_LOST"] if lost.is_set() else 0


def _end_stored(args: argparse.Namespace, out: Output, path, *, missing: str, route: str, done: str,
                default_status: str, forget_first: bool) -> int:
    """End the session stored at `path` through `route` and forget it (release and return).

    `forget_first` deletes the file before the server is asked (a borrow token must not
    outlive its return, even by a crash); otherwise only after, so a failed release can be retried."""
    record = _stored(path)
    if record is None:
        raise NoLease(missing)
    args.server = args.server or record.get("server")
    api = _api(args)
    if forget_first:
        borrows.forget(path)
    answer = api.post(route, {"session_id": record["session_id"]})
    if not forget_first:
        borrows.forget(path)
    out.result({"session_id": record["session_id"], **answer},
               [done.format(status=answer.get("status", default_status), session_id=record["session_id"])])
    return 0


def cmd_release(args: argparse.Namespace, out: Output) -> int:
    return _end_stored(args, out, borrows.session_file(_key(args)), route="release",
                       missing="no seat acquired by `coditect-license acquire` is stored here",
                       done="{status}: {session_id}", default_status="released", forget_first=False)


def cmd_borrow(args: argparse.Namespace, out: Output) -> int:
    key = _key(args)
    duration = _parse_duration(args.duration)
    had_session = borrows.load(borrows.session_file(key)) is not None
    lease = _take_seat(_license(args, release_at_exit=False), args, out)  # the machine's session if it holds one
    if lease.state == LeaseState.BORROWED:
        lease.detach()
        raise LicenseError("this machine already has a borrowed seat of this license; `return` it first",
                           code="ALREADY_BORROWED")
    try:
        claims = lease.borrow(duration)
    except BaseException:
        if had_session:
            lease.detach()  # the seat `acquire` stored stays as it was
        else:
            lease.close()  # taken only to borrow it: give it back
        raise
    lease.detach()
    borrows.forget(borrows.session_file(key))  # the session is the borrow now
    out.result({"session_id": claims.session_id, "borrowed_until": lease.borrowed_until, "token": lease.token,
                "claims": claims.as_dict()},
               [f"seat borrowed until {_when(lease.borrowed_until)}; the tool runs offline until then"]
               + _claims_lines(claims))
    return 0


def cmd_return(args: argparse.Namespace, out: Output) -> int:
    return _end_stored(args, out, borrows.borrow_file(_key(args)), route="borrow/return",
                       missing="no borrowed seat of this license is stored here",
                       done="{status}: the borrowed seat is back ({session_id})", default_status="returned",
                       forget_first=True)


def _not_verified(out: Output, exc: TokenInvalid, what: str, jws: str) -> int:
    """The refusal of a verify command, with the claims as they read unverified (if they do)."""
    try:
        shown = unverified_claims(jws)
    except TokenInvalid:
        shown = None
    return out.error(exc.code, f"{what}: {exc.message}", exit_code(exc), claims_unverified=shown)


def _key_cache(args: argparse.Namespace, given_keys: Any, command: str, jwks_flag: str) -> JwksCache:
    """The root keys a verify command checks against: the jwks given, or the server's (cached,
    or fetched unless --offline), pinned with --trusted-root (required without the jwks given)."""
    trusted_roots = _trusted_roots(args)
    if given_keys is None and trusted_roots is None:
        raise _missing_pins(f"{command} (without {jwks_flag})")
    server = args.server or os.environ.get(ENV_SERVER)
    if given_keys is None and not server:
        raise UsageError(f"{command} needs {jwks_flag} or a server (--server / CODITECT_LICENSE_SERVER) whose cached "
                         "or published keys to use")
    fetch = None
    if given_keys is None and not args.offline:
        fetch = ApiClient(_server(args), None, timeout_s=args.timeout, retry=RetryPolicy(attempts=1)).jwks
    return JwksCache(server, trusted_roots=trusted_roots, fetch=fetch, jwks=given_keys)


def cmd_verify(args: argparse.Namespace, out: Output) -> int:
    token = sys.stdin.read().strip() if args.token_to_verify == "-" else args.token_to_verify.strip()
    given_keys = None
    if args.jwks:
        with open(args.jwks, "rb") as handle:
            given_keys = json.load(handle)
    cache = _key_cache(args, given_keys, "verify", "--jwks FILE")
    expect: dict[str, Any] = {}
    if args.this_machine:
        expect["hardware_id"] = fingerprint.hardware_id()
    try:
        claims = cache.verify(token, **expect)
    except TokenInvalid as exc:
        return _not_verified(out, exc, "token rejected", token)
    out.result({"valid": True, "claims": claims.as_dict()}, ["valid lease token"] + _claims_lines(claims))
    return 0


def _read_text(name: str, what: str) -> str:
    """The text of file `name` (`-`: standard input); UsageError when it cannot be read."""
    if name == "-":
        return sys.stdin.read()
    try:
        with open(name, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {name!r}: {exc}") from None


def _json_text(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not JSON: {exc}") from None


def _jwks_document(source: str, timeout_s: float) -> dict[str, Any]:
    """`--jwks URL_OR_FILE`: a jwks document from an https:// URL (http:// on loopback) or a file."""
    if re.match(r"(?i)https?://", source):
        try:
            url = checked_server_url(source)
        except ValueError:
            raise UsageError(f"--jwks: refusing {source!r}: a jwks URL must be https:// (plain http:// only on "
                             "this machine's loopback)") from None
        try:
            response = httpx.get(url, timeout=timeout_s, headers={"User-Agent": f"coditect-license/{__version__}"})
        except httpx.HTTPError as exc:
            raise NetworkError(f"cannot fetch the jwks from {url}: {exc}") from None
        if response.status_code != 200:
            raise LicenseError(f"the jwks at {url} answered HTTP {response.status_code}")
        document = _json_text(response.text, f"the jwks at {url}")
    else:
        document = _json_text(_read_text(source, "the jwks file"), f"--jwks {source}")
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise UsageError(f"--jwks {source}: not a jwks document (an object with a \"keys\" list)")
    return document


def _statement_lines(claims: dict[str, Any], series_checked: bool) -> list[str]:
    figures = claims["figures"]
    known = [*INT_FIGURES[:2], *NUMBER_FIGURES, *INT_FIGURES[2:]]
    names = known + sorted(name for name in figures if name not in known)
    period = "final" if claims["final"] else f"not final: figures through {claims['through']}"
    series = claims["series"]
    checked = "matches the series given" if series_checked else "not checked (--series REPORT_JSON_FILE checks it)"
    return [
        "valid usage statement",
        f"  license:   {claims['sub']} (tenant {claims['tenant']})",
        f"  month:     {claims['month']} ({period})",
        f"  period:    {claims['from']} .. {claims['to']}",
        f"  max seats: {claims['max_seats']}",
        "  figures:",
        *(f"    {name + ':':<15}{figures[name]}" for name in names),
        f"  series:    {series['count']} hourly rows, sha256 {series['sha256']}",
        f"             {checked}",
        f"  issued:    {_when(claims['iat'])} by {claims['iss']}",
        "signature: valid",
    ]


def cmd_verify_statement(args: argparse.Namespace, out: Output) -> int:
    statement = _read_text(args.statement_file, "the statement").strip()
    series = None
    if args.series:
        series = _json_text(_read_text(args.series, "the report"), f"--series {args.series}")
    given_keys = _jwks_document(args.jwks, args.timeout) if args.jwks else None
    cache = _key_cache(args, given_keys, "verify-statement", "--jwks URL_OR_FILE")
    try:
        claims = verify_statement(statement, cache.keys(root_kid_of(statement)), trusted_roots=cache.trusted_roots,
                                  series=series)
    except ValueError as exc:  # the report given is not a series
        raise UsageError(f"--series {args.series}: {exc}") from None
    except TokenInvalid as exc:
        return _not_verified(out, exc, "statement not verified", statement)
    out.result(claims, _statement_lines(claims, series is not None))
    return 0


def cmd_run(args: argparse.Namespace, out: Output) -> int:
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        raise UsageError("run needs a command: coditect-license run -- CMD [ARGS...]")
    child: dict[str, subprocess.Popen] = {}

    def forward(signum: int, frame: Any) -> None:
        process = child.get("p")
        if process is not None and process.poll() is None:
            process.send_signal(signum)

    lost = threading.Event()
    lease = _take_seat(_license(args, on_lost=lambda *_: lost.set(), on_regained=lambda *_: lost.clear()), args,
                       out)  # Ctrl-C / SIGTERM while waiting end the wait
    for name in ("SIGTERM", "SIGINT"):
        signal.signal(getattr(signal, name), forward)
    with lease:
        env = {**os.environ, environment.LEASE_TOKEN: lease.token or "",
               environment.LEASE_SESSION: lease.session_id or ""}
        process = child["p"] = subprocess.Popen(command, env=env)
        while True:
            try:
                code = process.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if lost.is_set() and args.exit_on_lost:
                    process.terminate()
    return code if code >= 0 else 128 - code


# -- parser ---------------------------------------------------------------------------
_WAIT_HELP = ("wait up to T (30s, 10m, 1h, or seconds) for a seat when all are taken, in the license's wait "
              "queue if it has one")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", help=f"license server base URL (env {ENV_SERVER})")
    common.add_argument("--key", help=f"license key (env {ENV_KEY})")
    common.add_argument("--token", help=f"a Firebase ID token to use as is (env {ENV_TOKEN})")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--timeout", type=float, help="seconds per request (default 10)")
    common.add_argument("--trusted-root", action="append", metavar="THUMBPRINT",
                        help=f"a root key to trust offline (RFC 7638 thumbprint; repeatable; write --trusted-root=T, "
                             f"as a thumbprint may begin with -; env {ENV_TRUSTED_ROOTS}, "
                             "comma-separated)")

    parser = argparse.ArgumentParser(prog="coditect-license", parents=[common],
                                     description="Coditect floating licenses: seats, borrows, lease tokens.",
                                     epilog="exit codes: " + ", ".join(f"{v} {k}" for k, v in EXIT_CODES.items()
                                                                      if k != "NOT_FOUND"))
    parser.add_argument("--version", action="version", version=f"coditect-license {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    suppress = argparse.ArgumentParser(add_help=False)
    for action in common._actions:
        kwargs: dict[str, Any] = {"help": argparse.SUPPRESS, "default": argparse.SUPPRESS}
        if isinstance(action, argparse._StoreTrueAction):
            suppress.add_argument(*action.option_strings, action="store_true", **kwargs)
        elif isinstance(action, argparse._AppendAction):
            suppress.add_argument(*action.option_strings, action="append", metavar=action.metavar, **kwargs)
        else:
            if action.type is not None:
                kwargs["type"] = action.type
            suppress.add_argument(*action.option_strings, **kwargs)

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[suppress], help=help_text, description=help_text)
        command.set_defaults(func=func)
        return command

    p = add("fingerprint", cmd_fingerprint, "print this machine's hardware id")
    p.add_argument("--details", action="store_true", help="also say which source gave it")

    p = add("login", cmd_login, "sign in with Firebase Auth; the refresh token is stored (0600)")
    p.add_argument("--email")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--custom-token", help="sign in with a Firebase custom token instead")
    p.add_argument("--api-key", help=f"Firebase web API key (env {ENV_API_KEY})")
    p.add_argument("--auth-emulator", metavar="HOST:PORT",
                   help=f"use a Firebase Auth emulator (env {ENV_AUTH_EMULATOR})")
    p.add_argument("--identitytoolkit-url", default=GOOGLE_IDENTITY_TOOLKIT)
    p.add_argument("--securetoken-url", default=GOOGLE_SECURE_TOKEN)

    add("logout", cmd_logout, "forget the stored credentials")

    p = add("status", cmd_status, "what this machine holds, and the license's seats")
    p.add_argument("--offline", action="store_true", help="no network: only the stored tokens, verified offline")

    p = add("acquire", cmd_acquire, "take a seat")
    p.add_argument("--hold", action="store_true", help="keep the seat (heartbeats) until Ctrl-C / SIGTERM")
    p.add_argument("--wait", type=_wait_time, metavar="T", help=_WAIT_HELP)
    p.add_argument("--exit-on-lost", action="store_true", help="with --hold: exit (21) when the lease is lost")

    add("release", cmd_release, "release the seat taken by `acquire`")

    p = add("borrow", cmd_borrow, "borrow a seat for offline use")
    p.add_argument("--duration", required=True, help="how long: seconds, or 90m, 8h, 2d")
    p.add_argument("--wait", type=_wait_time, metavar="T", help=_WAIT_HELP)

    add("return", cmd_return, "return a borrowed seat early")

    p = add("verify", cmd_verify, "verify a lease token offline (exit 0 if valid)")
    p.add_argument("token_to_verify", metavar="TOKEN", help="the token, or - to read it from standard input")
    p.add_argument("--jwks", metavar="FILE", help="verify against these keys instead of the server's cached jwks")
    p.add_argument("--offline", action="store_true", help="never fetch the jwks, even for an unknown key")
    p.add_argument("--this-machine", action="store_true", help="also require the token to be bound to this machine")

    p = add("verify-statement", cmd_verify_statement, "verify a signed usage statement offline (exit 0 if valid)")
    p.add_argument("statement_file", metavar="FILE",
                   help="the statement (compact JWS) in a file, or - for standard input")
    p.add_argument("--jwks", metavar="URL_OR_FILE",
                   help="verify against this jwks (https:// URL or file) instead of the server's cached jwks")
    p.add_argument("--series", metavar="REPORT_JSON_FILE",
                   help="also check the hourly series: the report (granularity=hour, from=<from>, to=<through>) "
                        "as JSON, or its list of rows")
    p.add_argument("--offline", action="store_true", help="never fetch the jwks, even for an unknown key")

    p = add("run", cmd_run, "hold a seat while a command runs (its exit code is returned)")
    p.add_argument("--wait", type=_wait_time, metavar="T", help=_WAIT_HELP)
    p.add_argument("--exit-on-lost", action="store_true", help="stop the command if the lease is lost")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD", help="-- CMD [ARGS...]")
    return parser


class _CliWarnings(logging.StreamHandler):
    """The SDK's warnings on stderr, marked as ours like every other message of the CLI."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setLevel(logging.WARNING)
        self.setFormatter(logging.Formatter("coditect-license: %(message)s"))


def _show_sdk_warnings() -> None:
    logger = logging.getLogger("coditect_license")
    if not any(isinstance(handler, _CliWarnings) for handler in logger.handlers):
        logger.addHandler(_CliWarnings())


def main(argv: list[str] | None = None) -> int:
    _show_sdk_warnings()
    parser = _parser()
    args = parser.parse_args(argv)
    args.timeout = args.timeout or 10.0
    out = Output(args.json)
    try:
        return int(args.func(args, out) or 0)
    except UsageError as exc:
        return out.error("USAGE", str(exc), EXIT_CODES["USAGE"])
    except LicenseError as exc:
        extra: dict[str, Any] = {k: v for k, v in exc.details.items() if k != "claims"}
        if exc.retry_after is not None:
            extra["retry_after"] = exc.retry_after
        return out.error(exc.code, _human_error(exc, waited_as=_waited_as(args)), exit_code(exc),
                         support_line=_printable(exc.support), **extra)
    except KeyboardInterrupt:
        return 130


def entry() -> None:  # pragma: no cover
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
