"""licensectl's webhook commands (scripts/cli/webhook_commands.py) over the functions as served,
delivering to real receivers on loopback (the local stack allows them), checked with the SDK."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from coditect_license import verify_webhook
from tests.functions.test_webhook_delivery import Receiver
from tests.system.test_cli import REPO, _new_tenant, _on_a_terminal, as_json, run


@pytest.fixture
def hook_receivers() -> Iterator:
    made: list[Receiver] = []

    def make(status: int) -> Receiver:
        made.append(Receiver([status]))  # every POST answered with `status`
        return made[-1]

    yield make
    for receiver in made:
        receiver.server.shutdown()
        receiver.server.server_close()


def _made(done: subprocess.CompletedProcess) -> tuple[str, str]:
    """(the webhook id, its secret) from create-webhook's or rotate-webhook-secret's text."""
    assert done.returncode == 0, done.stderr
    webhook = re.search(r"^webhook (wh_[0-9a-z]{20}) ", done.stdout, re.M)
    secret = re.search(r"^  signing secret: (whsec_\S+)$", done.stdout, re.M)
    assert webhook and secret, done.stdout
    return webhook[1], secret[1]


def test_licensectl_runs_a_webhook_endpoint_through_its_life(function_server, id_token, hook_receivers):
    owner, admin, tenant_id = _new_tenant(function_server, id_token, "hooks", "Hooks Inc")
    failing, good = hook_receivers(500), hook_receivers(204)

    # made by the tenant's admin: the secret once, with its warning, and never again
    created = run("licensectl", *admin, "create-webhook", failing.url, "--events", "license.suspended,seats.exhausted",
                  "--description", "ops pager")
    webhook_id, secret = _made(created)
    assert created.stdout.count(secret) == 1 and "The secret is shown only now" in created.stdout
    assert "events: license.suspended, seats.exhausted" in created.stdout
    listing = run("licensectl", *admin, "webhooks")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0].split() == ["WEBHOOK", "TENANT", "URL", "EVENTS", "STATE"]
    row = next(line.split() for line in listing.stdout.splitlines() if line.startswith(webhook_id))
    assert row == [webhook_id, tenant_id, failing.url, "license.suspended,seats.exhausted", "enabled"]
    listed = run("licensectl", *owner, "webhooks", "--tenant", tenant_id, "--json")
    assert [w["id"] for w in as_json(listed)["webhooks"]] == [webhook_id]
    assert "whsec_" not in listing.stdout + listed.stdout

    # a test event the receiver fails: exit 1, tried again on the schedule
    refused = run("licensectl", *admin, "test-webhook", webhook_id)
    assert refused.returncode == 1 and "NOT delivered" in refused.stdout and "HTTP 500" in refused.stdout
    assert "tried again on the schedule" in refused.stdout

    # changed: another URL, every event, disabled; then enabled
    changed = run("licensectl", *admin, "update-webhook", webhook_id, "--url", good.url, "--all-events", "--disable",
                  "--description", "pager")
    assert changed.returncode == 0, changed.stderr
    assert f"webhook {webhook_id} updated (description, enabled, events, url)" in changed.stdout
    assert re.search(r"^events\s+all$", changed.stdout, re.M)
    assert re.search(r"^state\s+disabled$", changed.stdout, re.M)
    nothing = run("licensectl", *admin, "update-webhook", webhook_id)
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    enabled = as_json(run("licensectl", *admin, "update-webhook", webhook_id, "--enable", "--json"))["webhook"]
    assert (enabled["url"], enabled["enabled"], enabled["events"]) == (good.url, True, [])

    # delivered, and verified with the secret as a receiver would
    tested = run("licensectl", *admin, "test-webhook", webhook_id)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert re.search(rf"^webhook\.test event test-\S+ delivered to {webhook_id}: HTTP 204 in \d+ ms$", tested.stdout)
    [(body, headers)] = good.received
    assert verify_webhook(body, headers, secret)["type"] == "webhook.test"

    # the delivery log: each delivery with its attempts
    log = run("licensectl", *admin, "webhook-deliveries", webhook_id)
    assert log.returncode == 0, log.stderr
    assert log.stdout.splitlines()[1].split() == ["EVENT", "TYPE", "STATE", "ATTEMPTS", "FIRST", "NEXT", "ATTEMPT"]
    assert re.search(r"^test-\S+\s+webhook\.test\s+delivered\s+1\s+\S+Z\s+-$", log.stdout, re.M)
    assert re.search(r"^test-\S+\s+webhook\.test\s+due\s+1\s+\S+Z\s+\S+Z$", log.stdout, re.M)
    assert re.search(r"^    \S+Z  HTTP 204  \d+ ms$", log.stdout, re.M)
    assert re.search(r"^    \S+Z  HTTP 500  \d+ ms", log.stdout, re.M)

    # a rotation: the new secret once; the old one signs beside it until the overlap ends (or not at all)
    rotated = run("licensectl", *admin, "rotate-webhook-secret", webhook_id, "--overlap", "600")
    new_secret = _made(rotated)[1]
    assert new_secret != secret and rotated.stdout.count(new_secret) == 1
    assert "The secret before still signs beside it until 20" in rotated.stdout
    assert "no longer signs" in run("licensectl", *admin, "rotate-webhook-secret", webhook_id, "--overlap",
                                    "0").stdout

    # deleted: asked first (no terminal: only with --yes)
    unasked = run("licensectl", *admin, "delete-webhook", webhook_id)
    assert unasked.returncode == 2 and "pass --yes" in unasked.stderr
    kept = _on_a_terminal([*admin, "delete-webhook", webhook_id], "n")
    assert kept.returncode == 1 and "not deleted" in kept.stderr
    assert f"Delete webhook {webhook_id} of tenant {tenant_id} ({good.url})?" in kept.stderr
    deleted = run("licensectl", *admin, "delete-webhook", webhook_id, "--yes")
    assert deleted.returncode == 0 and f"webhook {webhook_id} deleted" in deleted.stdout, deleted.stderr
    gone = run("licensectl", *admin, "webhooks")
    assert gone.returncode == 0 and gone.stdout.strip() == "(no webhooks)"


def test_a_tenant_admin_sees_no_webhook_of_another_tenant(function_server, id_token, hook_receivers):
    owner, _, tenant_id = _new_tenant(function_server, id_token, "hooks-a", "Hooks A")
    _, other_admin, _ = _new_tenant(function_server, id_token, "hooks-b", "Hooks B")
    webhook_id, _ = _made(run("licensectl", *owner, "create-webhook", hook_receivers(204).url, "--tenant", tenant_id))
    for args in (["webhook", webhook_id], ["test-webhook", webhook_id], ["delete-webhook", webhook_id, "--yes"]):
        refused = run("licensectl", *other_admin, *args)
        assert refused.returncode == 1 and f"404 NOT_FOUND: no webhook {webhook_id}" in refused.stderr, args
        assert refused.stdout == "" and "Traceback" not in refused.stderr
    assert run("licensectl", *other_admin, "webhooks", "--tenant", tenant_id).stdout.strip() == "(no webhooks)"


class _Listening:
    """licensectl webhook-listen running, its stderr read as it comes: `endpoint` and `port`
    once it says it listens."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen([str(REPO / "scripts" / "licensectl"), "webhook-listen", *args], text=True,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._said: list[str] = []
        self._reader = threading.Thread(target=lambda: self._said.extend(self.process.stderr), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 30
        while not (found := re.search(r"listening on http://127\.0\.0\.1:(\d+)/ .*endpoint (wh_[0-9a-z]{20})",
                                      "".join(self._said))):
            assert self.process.poll() is None and time.monotonic() < deadline, self.stderr
            time.sleep(0.05)
        self.port, self.endpoint = int(found[1]), found[2]

    @property
    def stderr(self) -> str:
        return "".join(self._said)

    def finish(self) -> str:
        """Its stdout once it has ended by itself (within 20 s)."""
        try:
            self.process.wait(timeout=20)
            out = self.process.stdout.read()
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(timeout=5)
        return out


def _forged_delivery(port: int) -> bytes:
    """A delivery without a signature, with a terminal escape in its id header, straight to the port."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        body = b'{"id": "ev-1", "type": "license.revoked"}'
        conn.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Coditect-Webhook-Id: \x1b]0;pwned\x07\r\nCoditect-Webhook-Type: license.revoked\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    return answer


def test_webhook_listen_verifies_what_it_receives_and_deletes_its_endpoint(function_server, id_token):
    _, admin, tenant_id = _new_tenant(function_server, id_token, "listen", "Listen Ltd")
    listener = _Listening(*admin, "--count", "1")
    try:
        webhook = as_json(run("licensectl", *admin, "webhook", listener.endpoint, "--json"))["webhook"]
        assert webhook["url"] == f"http://127.0.0.1:{listener.port}/"
        assert _forged_delivery(listener.port).startswith(b"HTTP/1.0 400 ")  # refused, and not counted
        tested = run("licensectl", *admin, "test-webhook", listener.endpoint)
        assert tested.returncode == 0, tested.stdout + tested.stderr
    finally:
        out = listener.finish()
    assert listener.process.returncode == 0, listener.stderr
    forged, verified = out.splitlines()
    assert forged.split()[1:] == ["license.revoked", "-", "\\x1b]0;pwned\\x07", "REFUSED:", "missing_header"]
    assert "\x1b" not in out
    event_id = re.search(r"test event (test-\S+) delivered", tested.stdout)[1]
    assert verified.split()[1:] == ["webhook.test", "-", event_id, "signature", "ok"]
    assert f"endpoint {listener.endpoint} deleted (1 verified event)" in listener.stderr
    assert as_json(run("licensectl", *admin, "webhooks", "--tenant", tenant_id, "--json"))["webhooks"] == []


def test_webhook_listen_deletes_its_endpoint_on_ctrl_c_or_sigterm(function_server, id_token):
    _, admin, tenant_id = _new_tenant(function_server, id_token, "stop", "Stop Ltd")
    listeners = {stop: _Listening(*admin, "--json", "--events", "license.revoked")
                 for stop in (signal.SIGINT, signal.SIGTERM)}
    for stop, listener in listeners.items():
        listener.process.send_signal(stop)
    for listener in listeners.values():
        out = listener.finish()
        assert (listener.process.returncode, out) == (0, ""), listener.stderr
        assert f"endpoint {listener.endpoint} deleted (0 verified events)" in listener.stderr
        assert "(license.revoked)" in listener.stderr
    assert as_json(run("licensectl", *admin, "webhooks", "--tenant", tenant_id, "--json"))["webhooks"] == []


def test_webhook_listen_is_for_the_dev_stack_only(id_token):
    env = {**os.environ, "LICENSECTL_BASE_URL": "https://europe-west1-p.cloudfunctions.net/staging-{name}",
           "LICENSECTL_TOKEN": id_token("ops", role="admin", tenant="some-tenant")}
    done = run("licensectl", "webhook-listen", "--once", env=env)
    assert (done.returncode, done.stdout) == (2, "")
    assert "webhook-listen is for the local dev stack only" in done.stderr and "Traceback" not in done.stderr


def test_licensectl_makes_an_e_mail_endpoint_which_has_no_secret_and_gets_a_test_e_mail(function_server, stack,
                                                                                        id_token):
    """mailto: through the functions as served: the test e-mail goes out through the stack's SMTP relay."""
    _, admin, tenant_id = _new_tenant(function_server, id_token, "mail", "Mail Ltd")
    address = f"ops-{tenant_id}@mail.example"
    created = run("licensectl", *admin, "create-webhook", f"mailto:{address}")
    assert created.returncode == 0, created.stderr
    webhook_id = re.search(r"^webhook (wh_[0-9a-z]{20}) ", created.stdout, re.M)[1]
    assert "  no signing secret: e-mail" in created.stdout and "whsec_" not in created.stdout
    assert "events: license.expiring, license.expired" in created.stdout
    detail = run("licensectl", *admin, "webhook", webhook_id)
    assert re.search(r"^signing\s+none: e-mail$", detail.stdout, re.M), detail.stdout

    tested = run("licensectl", *admin, "test-webhook", webhook_id)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert re.search(rf"^webhook\.test event test-\S+ delivered to {webhook_id}: SMTP 250 in \d+ ms$", tested.stdout)
    [mail] = stack.mail.received(address)
    assert mail.message["Subject"] == f"Test e-mail from the license server ({tenant_id})"
    log = run("licensectl", *admin, "webhook-deliveries", webhook_id)
    assert re.search(r"^    \S+Z  SMTP 250  \d+ ms$", log.stdout, re.M), log.stdout

    refused = run("licensectl", *admin, "rotate-webhook-secret", webhook_id)
    assert refused.returncode == 1 and "no signing secret to rotate" in refused.stderr
    bad = run("licensectl", *admin, "create-webhook", f"mailto:{address}?bcc=x@evil.example")
    assert bad.returncode == 1 and "400" in bad.stderr and "no ?headers" in bad.stderr
