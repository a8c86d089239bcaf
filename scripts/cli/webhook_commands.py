"""licensectl's commands for a tenant's webhook endpoints (openapi.yaml /admin/webhooks...), and their views.

    POST   webhooks                        create-webhook          (the signing secret is printed once; a
                                                                    mailto: endpoint has none)
    GET    webhooks                        webhooks
    GET    webhooks/{id}                   webhook
    PATCH  webhooks/{id}                   update-webhook
    DELETE webhooks/{id}                   delete-webhook          (asks first; without a terminal needs --yes)
    POST   webhooks/{id}/rotate            rotate-webhook-secret   (the new secret is printed once)
    GET    webhooks/{id}/deliveries        webhook-deliveries
    POST   webhooks/{id}/test              test-webhook            (exit 1 when the test event was not delivered)
    POST + DELETE webhooks                 webhook-listen          (the local dev stack only)

webhook-listen is `stripe listen` for the dev stack: a receiver on 127.0.0.1 (http.server in a
thread), an endpoint made for it through the admin function, each delivery verified with the
SDK's verify_webhook and the secret of that endpoint (a line per event; 200 verified, 400
refused), and the endpoint deleted again on Ctrl-C, SIGTERM or after --count verified events.
A deployed admin function refuses http and loopback URLs, and could not reach this machine's
127.0.0.1 anyway: webhook-listen is refused unless the admin function is on this machine's
loopback (the dev stack); what the server refuses (a stack without WEBHOOK_ALLOW_PRIVATE) is
its error, as for any command.

Every text the server (or a sender) gives is shown through admin_views.inert: a URL, a
description or an error could carry a terminal's escape sequence.
"""

from __future__ import annotations

import argparse
import http.server
import ipaddress
import json
import os
import signal
import sys
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import FrameType
from typing import Any, cast

from cli import admin_views
from cli.admin_api import AdminClient, segment, target
from cli.admin_commands import _pages, _paging
from cli.errors import CliError, UsageError

COMMANDS = ("create-webhook", "webhooks", "webhook", "update-webhook", "delete-webhook", "rotate-webhook-secret",
            "webhook-deliveries", "test-webhook", "webhook-listen")
MAX_OVERLAP_S = 7 * 24 * 3600  # openapi.yaml: rotate's overlap_s (default 86400)
_URL_COLUMNS, _EVENTS_COLUMNS, _REASON_COLUMNS = 56, 40, 48  # longer ones are clipped in the table
_LONGEST_BODY = 1 << 20  # a delivery is a small JSON object; a receiver refuses more than this
_TYPE_WIDTH, _LICENSE_WIDTH = 22, 24  # session.force_released; lic_ + 20


def _events(text: str) -> list[str]:
    return [e.strip() for e in text.split(",") if e.strip()]


def _overlap(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= seconds <= MAX_OVERLAP_S:
        raise argparse.ArgumentTypeError(f"{seconds}: from 0 (the old secret stops now) to {MAX_OVERLAP_S} (7 days)")
    return seconds


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number}: at least 1")
    return number


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port}: a port is 0 (any free one) to 65535")
    return port


_EVENTS_HELP = ("comma-separated notification types, e.g. license.suspended,seats.exhausted (README, "
                "\"Notifications\"; webhook.test always reaches the endpoint)")


def add_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    create = command("create-webhook", "make a webhook endpoint of a tenant; its signing secret is printed once "
                                       "(mailto:ADDRESS: notifications by e-mail, no secret)")
    create.add_argument("url", help="https://... (the local dev stack also takes http://127.0.0.1:PORT/...), or "
                                    "mailto:ADDRESS (by e-mail; default events: license.expiring,license.expired)")
    create.add_argument("--tenant", help="whose endpoint (the owner names one; an admin's is its own tenant's)")
    create.add_argument("--events", type=_events, metavar="A,B", help=_EVENTS_HELP + " (default: all)")
    create.add_argument("--description", metavar="TEXT", help="what it is for (at most 200 characters)")

    listing = command("webhooks", "webhook endpoints: URL, events, enabled or why disabled (never a secret)")
    listing.add_argument("--tenant", help="only this tenant's (owner; an admin sees its own tenant's only)")
    _paging(listing)

    one = command("webhook", "one webhook endpoint, all its settings")
    one.add_argument("webhook_id")

    update = command("update-webhook", "change a webhook endpoint's URL, events or description, or enable or "
                                       "disable it (enabling clears why the service disabled it)")
    update.add_argument("webhook_id")
    update.add_argument("--url")
    events = update.add_mutually_exclusive_group()
    events.add_argument("--events", type=_events, metavar="A,B", help=_EVENTS_HELP + "; replaces the list")
    events.add_argument("--all-events", action="store_true", help="every notification type")
    enabled = update.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_const", const=True, default=None)
    enabled.add_argument("--disable", dest="enabled", action="store_const", const=False,
                         help="deliver nothing to it until enabled again")
    update.add_argument("--description", metavar="TEXT", help="'' for none")

    delete = command("delete-webhook", "delete a webhook endpoint and its secret: nothing is delivered to it again")
    delete.add_argument("webhook_id")
    delete.add_argument("--yes", action="store_true", help="do not ask (needed when stdin is not a terminal)")

    rotate = command("rotate-webhook-secret", "a new signing secret, printed once; the one before still signs "
                                              "beside it for the overlap")
    rotate.add_argument("webhook_id")
    rotate.add_argument("--overlap", type=_overlap, metavar="SECONDS",
                        help=f"how long the secret before keeps signing (0-{MAX_OVERLAP_S}; default: a day)")

    deliveries = command("webhook-deliveries", "the endpoint's delivery log, the latest changed first: each "
                                               "delivery with its last attempts (status, latency, error)")
    deliveries.add_argument("webhook_id")
    deliveries.add_argument("--limit", type=int, default=20, metavar="N", help="deliveries (1-100; default 20)")

    test = command("test-webhook", "deliver a webhook.test event to the endpoint now and say how it went "
                                   "(exit 1 when it was not delivered)")
    test.add_argument("webhook_id")

    listen = command("webhook-listen", "the local dev stack only: receive the tenant's webhooks on 127.0.0.1, "
                                       "verify each with the SDK and print a line per event; the endpoint made "
                                       "for it is deleted on Ctrl-C or SIGTERM")
    listen.add_argument("--port", type=_port, default=0, metavar="P", help="the receiver's port (default: a free one)")
    listen.add_argument("--tenant", help="whose events (the owner names one; an admin's are its own tenant's)")
    listen.add_argument("--events", type=_events, metavar="A,B", help=_EVENTS_HELP + " (default: all)")
    stop = listen.add_mutually_exclusive_group()
    stop.add_argument("--count", type=_positive, metavar="N", help="stop after N verified events")
    stop.add_argument("--once", dest="count", action="store_const", const=1, help="stop after one (--count 1)")


def run(args: argparse.Namespace) -> int:
    url, token = target(args.base_url, args.token)
    if args.command == "webhook-listen":
        _local_stack_only(url)
    with AdminClient(url, token, inert=admin_views.inert) as client:
        if args.command == "webhook-listen":
            return _listen(client, args)
        answer, text = _perform(client, args)
    # JSON escapes control characters itself; the human form shows them inert.
    print(json.dumps(answer, indent=2) if args.json else text(admin_views.inert(answer)))
    return 1 if args.command == "test-webhook" and not answer.get("delivered") else 0


def _perform(client: AdminClient, args: argparse.Namespace
             ) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    """The answer to print, and how it reads to a person."""
    command = args.command
    path = f"webhooks/{segment(args.webhook_id)}" if hasattr(args, "webhook_id") else ""
    match command:
        case "create-webhook":
            body: dict[str, Any] = {"url": args.url}
            body.update({k: v for k, v in (("tenant", args.tenant), ("events", args.events),
                                           ("description", args.description)) if v is not None})
            return client.call("POST", "webhooks", body=body), created_webhook
        case "webhooks":
            page = _pages(client, "webhooks", "webhooks", {"tenant": args.tenant} if args.tenant else {}, args)
            return page, lambda a: webhooks(a, None if args.all else args.limit)
        case "webhook":
            return client.call("GET", path), webhook_detail
        case "update-webhook":
            body = {k: v for k, v in (("url", args.url), ("events", [] if args.all_events else args.events),
                                      ("description", args.description), ("enabled", args.enabled))
                    if v is not None}
            if not body:
                raise UsageError("update-webhook: nothing to change; name --url, --events or --all-events, "
                                 "--enable or --disable, or --description")
            answer = client.call("PATCH", path, body=body)
            return answer, lambda a: (f"webhook {a['webhook']['id']} updated ({', '.join(sorted(body))})\n\n"
                                      + webhook_detail(a))
        case "delete-webhook":
            if not args.yes:
                _confirm_delete(client, args.webhook_id)
            return client.call("DELETE", path), deleted_webhook
        case "rotate-webhook-secret":
            body = {} if args.overlap is None else {"overlap_s": args.overlap}
            return client.call("POST", f"{path}/rotate", body=body), rotated_secret
        case "webhook-deliveries":
            by = _carrier(client, path)
            answer = client.call("GET", f"{path}/deliveries", query={"limit": str(args.limit)})
            return answer, lambda a: delivery_log(a, by)
        case "test-webhook":
            by = _carrier(client, path)
            answer = client.call("POST", f"{path}/test", body={})
            return answer, lambda a: tested(a, args.webhook_id, by)
    raise AssertionError(command)


def _carrier(client: AdminClient, path: str) -> str:
    """SMTP for an e-mail endpoint (its attempts' statuses are SMTP replies), else HTTP."""
    url = str(client.call("GET", path)["webhook"]["url"])
    return "SMTP" if url[:7].lower() == "mailto:" else "HTTP"


def _confirm_delete(client: AdminClient, webhook_id: str) -> None:
    if not sys.stdin.isatty():
        raise UsageError(f"delete-webhook {webhook_id}: stdin is not a terminal to ask on; pass --yes to delete")
    endpoint = admin_views.inert(client.call("GET", f"webhooks/{segment(webhook_id)}"))["webhook"]
    print(f"Delete webhook {endpoint['id']} of tenant {endpoint['tenant']} ({endpoint['url']})?\n"
          "Nothing is delivered to it again and its secret is destroyed; this cannot be undone. [y/N] ",
          end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise CliError("not deleted")


# -- views ------------------------------------------------------------------------------------
def _event_types(endpoint: dict[str, Any]) -> str:
    return ", ".join(endpoint.get("events") or []) or "all"


def webhook_state(endpoint: dict[str, Any]) -> str:
    """enabled, disabled (by an administrator), or disabled by the service and why."""
    if endpoint.get("enabled"):
        return "enabled"
    reason = endpoint.get("disabled_reason")
    return f"disabled by the service: {reason}" if reason else "disabled"


def webhooks(answer: dict[str, Any], limit: int | None) -> str:
    rows = [[w["id"], w["tenant"], admin_views.clip(w["url"], _URL_COLUMNS),
             admin_views.clip(",".join(w.get("events") or []) or "all", _EVENTS_COLUMNS),
             admin_views.clip(webhook_state(w), _REASON_COLUMNS)] for w in answer["webhooks"]]
    if not rows:
        return "(no webhooks)"
    more = ""
    if answer.get("next_after") and limit is not None and len(rows) >= limit:
        more = f"\n(more: --after {answer['next_after']}, or --all)"
    return admin_views.table(["WEBHOOK", "TENANT", "URL", "EVENTS", "STATE"], rows) + more


def _signing(endpoint: dict[str, Any]) -> str:
    if str(endpoint.get("url", ""))[:7].lower() == "mailto:":
        return "none: e-mail"
    until = endpoint.get("previous_secret_signs_until")
    return (f"the new and the one before, until {admin_views.when(until)}" if until
            else "one secret (no rotation under way)")


def webhook_detail(answer: dict[str, Any]) -> str:
    endpoint = answer["webhook"]
    rows = [("webhook", endpoint["id"]),
            ("tenant", endpoint["tenant"]),
            ("url", endpoint["url"]),
            ("events", _event_types(endpoint)),
            ("state", webhook_state(endpoint)),
            ("description", endpoint.get("description") or "(none)"),
            ("signing", _signing(endpoint)),
            ("created", f"{admin_views.when(endpoint.get('created_at'))} by {endpoint.get('created_by')}")]
    return "\n".join(f"{name:<12} {value}" for name, value in rows)


def created_webhook(answer: dict[str, Any]) -> str:
    endpoint = answer["webhook"]
    if answer.get("secret") is None:  # an e-mail endpoint: nothing signs an e-mail
        return (f"webhook {endpoint['id']} of tenant {endpoint['tenant']}: {endpoint['url']}\n"
                f"events: {_event_types(endpoint)}\n\n"
                "  no signing secret: e-mail\n\n"
                "Notifications go to the address through the service's SMTP relay. A test e-mail:\n"
                f"  licensectl test-webhook {endpoint['id']}")
    return (f"webhook {endpoint['id']} of tenant {endpoint['tenant']}: {endpoint['url']}\n"
            f"events: {_event_types(endpoint)}\n\n"
            f"  signing secret: {answer['secret']}\n\n"
            "The secret is shown only now: it is kept in Secret Manager and cannot be shown again\n"
            "(rotate-webhook-secret makes a new one). The receiver verifies each delivery with it (the SDK's\n"
            "verify_webhook: client/README.md, \"Verifying webhooks\"). A test event:\n"
            f"  licensectl test-webhook {endpoint['id']}")


def rotated_secret(answer: dict[str, Any]) -> str:
    endpoint = answer["webhook"]
    until = endpoint.get("previous_secret_signs_until")
    before = (f"The secret before still signs beside it until {admin_views.when(until)}: switch the receiver to the "
              "new one by then\n(either verifies until that time; verify_webhook takes both, [NEW, OLD]).") if until \
        else "The secret before no longer signs: deliveries verify with the new one only, from now on."
    return (f"webhook {endpoint['id']} of tenant {endpoint['tenant']}: a new signing secret\n\n"
            f"  signing secret: {answer['secret']}\n\n"
            f"The secret is shown only now; it is never shown again.\n{before}")


def deleted_webhook(answer: dict[str, Any]) -> str:
    return f"webhook {answer['id']} deleted, and its secret: nothing is delivered to it again"


def _attempt(attempt: dict[str, Any], by: str = "HTTP") -> str:
    status = attempt.get("status")
    parts = [admin_views.when(attempt.get("at")), f"{by} {status}" if status is not None else "no answer",
             f"{attempt.get('latency_ms')} ms"]
    if attempt.get("error"):
        parts.append(str(attempt["error"]))
    return "    " + "  ".join(parts)


def delivery_log(answer: dict[str, Any], by: str = "HTTP") -> str:
    """Each delivery (event, type, state, attempts) with its last attempts, newest first; `by`:
    HTTP, or SMTP for an e-mail endpoint."""
    deliveries = answer["deliveries"]
    head = f"deliveries to {answer['webhook']}, the latest changed first"
    if not deliveries:
        return f"{head}\n(no deliveries yet: `licensectl test-webhook {answer['webhook']}` sends one)"
    rows = [[d["event"], d["type"], d["state"], str(d["attempt_count"]), admin_views.when(d.get("first_at")),
             admin_views.when(d.get("next_attempt_at"), never="-")] for d in deliveries]
    lines = admin_views.table(["EVENT", "TYPE", "STATE", "ATTEMPTS", "FIRST", "NEXT ATTEMPT"], rows,
                              right=(3,)).splitlines()
    out = [head, lines[0]]
    for line, delivery in zip(lines[1:], deliveries, strict=True):
        out.append(line)
        out += [_attempt(a, by) for a in delivery.get("attempts") or []]
    return "\n".join(out)


_WHAT_NEXT = {"due": "it is tried again on the schedule (30 s, doubling to an hour between tries, for 24 hours)",
              "refused": "refused for good (an answer 4xx other than 408 and 429, or an address that is not "
                         "allowed): not tried again"}
_WHAT_NEXT_BY_MAIL = {**_WHAT_NEXT, "refused": "refused for good (a 5xx reply of the mail server, or an address "
                                               "that is not allowed): not tried again"}


def tested(answer: dict[str, Any], webhook_id: str, by: str = "HTTP") -> str:
    status = answer.get("status")
    how = f"{by} {status}" if status is not None else "no answer"
    error = f": {answer['error']}" if answer.get("error") else ""
    if answer.get("delivered"):
        return f"webhook.test event {answer['event']} delivered to {webhook_id}: {how} in {answer['latency_ms']} ms"
    next_steps = _WHAT_NEXT_BY_MAIL if by == "SMTP" else _WHAT_NEXT
    return (f"webhook.test event {answer['event']} NOT delivered to {webhook_id}: {how} after "
            f"{answer['latency_ms']} ms{error}\n{next_steps.get(answer.get('state', ''), answer.get('state', ''))};\n"
            f"its attempts: licensectl webhook-deliveries {webhook_id}")


# -- webhook-listen ---------------------------------------------------------------------------
def _local_stack_only(admin_url: str) -> None:
    """A receiver on this machine's 127.0.0.1 is reached only by an admin function on it."""
    host = urllib.parse.urlsplit(admin_url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(f"webhook-listen is for the local dev stack only: {admin_url} is not on this machine, so it "
                         "cannot deliver to a receiver on 127.0.0.1 (and a deployed admin function refuses http and "
                         "loopback URLs). Make an https endpoint with `licensectl create-webhook URL` and check it "
                         "with `licensectl test-webhook ID`.")


class _Listener:
    """The receiver: verifies each POST with the endpoint's secret, prints a line for it and
    answers 200 (verified) or 400 (refused); `done` is set after `count` verified events."""

    def __init__(self, port: int, *, as_json: bool, count: int | None) -> None:
        self.secret: str | None = None  # known once the endpoint is made (nothing is delivered before)
        self.as_json, self.count, self.verified = as_json, count, 0
        self.done = threading.Event()
        self._lock = threading.Lock()
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                status, answer = listener.receive(self)
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if status == 200:
                    listener.counted()

            def do_GET(self) -> None:  # noqa: N802 - a browser pointed at it gets a sentence
                self.send_error(405, "webhook-listen takes POSTed deliveries only")

            def log_message(self, *args: Any) -> None:
                pass

        try:
            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as exc:
            raise CliError(f"webhook-listen: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def receive(self, request: http.server.BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
        received = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = request.headers
        try:
            length = int(headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if not 0 <= length <= _LONGEST_BODY:
            return self._refused(received, headers, "malformed_body", "no Content-Length, or more than 1 MiB")
        body = request.rfile.read(length)
        from coditect_license import WebhookInvalid, verify_webhook  # the SDK, as a receiver would use it

        if self.secret is None:
            return self._refused(received, headers, "no_matching_signature", "no endpoint made yet")
        try:
            # Message.items() has every header, a repeated one too, as verify_webhook wants them
            event = verify_webhook(body, cast(Mapping[str, str], headers), [self.secret])
        except WebhookInvalid as exc:
            return self._refused(received, headers, exc.reason, str(exc))
        self._show({"received_at": received, "verified": True, "event": event},
                   [received, event.get("type"), event.get("license") or "-", event.get("id"), "signature ok"])
        return 200, {"received": event.get("id")}

    def _refused(self, received: str, headers: Any, reason: str, message: str) -> tuple[int, dict[str, Any]]:
        said = {"id": headers.get("Coditect-Webhook-Id"), "type": headers.get("Coditect-Webhook-Type")}
        self._show({"received_at": received, "verified": False, "reason": reason, "message": message, **said},
                   [received, said["type"] or "?", "-", said["id"] or "?", f"REFUSED: {reason}"])
        return 400, {"error": reason}

    def _show(self, record: dict[str, Any], cells: list[Any]) -> None:
        if self.as_json:
            line = json.dumps(record)
        else:  # what a sender wrote, verified or not, reaches the terminal inert
            at, kind, lic, event_id, verdict = (str(admin_views.inert(c)) for c in cells)
            line = f"{at}  {kind:<{_TYPE_WIDTH}}  {lic:<{_LICENSE_WIDTH}}  {event_id}  {verdict}"
        with self._lock:
            try:
                print(line, flush=True)
            except (BrokenPipeError, ValueError):  # the reader has gone: the events are still answered
                pass

    def counted(self) -> None:
        with self._lock:
            self.verified += 1
            if self.count is not None and self.verified >= self.count:
                self.done.set()


def _listen(client: AdminClient, args: argparse.Namespace) -> int:
    listener = _Listener(args.port, as_json=args.json, count=args.count)
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    before = {sig: signal.signal(sig, stopping) for sig in (signal.SIGINT, signal.SIGTERM)}
    listener.start()
    endpoint_id: str | None = None
    try:
        body: dict[str, Any] = {"url": listener.url, "description": f"licensectl webhook-listen (pid {os.getpid()})"}
        body.update({k: v for k, v in (("tenant", args.tenant), ("events", args.events)) if v is not None})
        made = client.call("POST", "webhooks", body=body)
        endpoint = admin_views.inert(made["webhook"])
        endpoint_id, listener.secret = made["webhook"]["id"], made["secret"]
        until = f"{args.count} verified event{'' if args.count == 1 else 's'}, " if args.count else ""
        print(f"licensectl: listening on {listener.url} for tenant {endpoint['tenant']}'s events "
              f"({_event_types(endpoint)}): endpoint {endpoint_id}; stops (and deletes it) after {until}Ctrl-C or "
              "SIGTERM", file=sys.stderr, flush=True)
        while not stop.is_set() and not listener.done.is_set():
            stop.wait(0.2)
    finally:
        try:
            if endpoint_id is not None:
                client.call("DELETE", f"webhooks/{segment(endpoint_id)}")
                print(f"licensectl: endpoint {endpoint_id} deleted ({listener.verified} verified "
                      f"event{'' if listener.verified == 1 else 's'})", file=sys.stderr, flush=True)
        except CliError as exc:
            raise CliError(f"webhook-listen: the endpoint {endpoint_id} is left: {exc.message}\n  delete it with "
                           f"`licensectl delete-webhook {endpoint_id} --yes`") from None
        finally:
            listener.stop()
            for sig, handler in before.items():
                signal.signal(sig, handler)
    return 0
