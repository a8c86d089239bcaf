"""scripts/licensectl (over the admin function) and scripts/dev-token, run as an operator would."""

from __future__ import annotations

import calendar
import json
import os
import pty
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(tool: str, *args: str, env: dict[str, str] | None = None, stdin: int | None = subprocess.DEVNULL,
        ) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "scripts" / tool), *args], env=env or dict(os.environ), stdin=stdin,
                          capture_output=True, text=True, timeout=120)


def as_json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_licensectl_walks_an_operator_through_a_stuck_seat(function_server, stack, id_token, call):
    owner = ["--base-url", function_server.base_url, "--token", id_token("root", role="owner")]
    tenant_id = f"cli-{secrets.token_hex(3)}"

    tenant = run("licensectl", *owner, "create-tenant", "CLI Corp", "--id", tenant_id, "--json")
    assert tenant.returncode == 0, tenant.stderr and json.loads(tenant.stdout)["id"] == tenant_id
    created = run("licensectl", *owner, "create-license", "--tenant", tenant_id, "--seats", "1", "--tier", "pro",
                  "--features", "a,b", "--expires", "2099-01-01T00:00:00Z", "--lease-ttl", "120", "--json")
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    lic = issued["license"]
    assert (lic["max_seats"], lic["lease_ttl_s"], lic["heartbeat_interval_s"]) == (1, 120, 100)
    assert lic["expires_at"] == "2099-01-01T00:00:00.000Z" and lic["features"] == ["a", "b"]

    # a tenant admin (not the owner) sees the holder and frees the seat
    admin = ["--base-url", function_server.base_url, "--token", id_token("ops", role="admin", tenant=tenant_id)]
    status, body, _ = call("acquire", {"license_key": issued["license_key"], "hardware_id": "stuck"}, uid="away")
    assert status == 201
    holders = run("licensectl", *admin, "holders", lic["id"])
    assert holders.returncode == 0 and "1 of 1 seats in use" in holders.stdout and body["session_id"] in holders.stdout
    freed = run("licensectl", *admin, "force-release", lic["id"], body["session_id"])
    assert freed.returncode == 0 and "released" in freed.stdout
    assert call("acquire", {"license_key": issued["license_key"], "hardware_id": "mine"}, uid="me")[0] == 201
    events = run("licensectl", *admin, "events", "--license", lic["id"], "--json")
    assert "force-release" in [e["type"] for e in json.loads(events.stdout)["events"]]


def _row(table: str, first_cell: str) -> list[str]:
    """The cells of the table row that begins with `first_cell`."""
    line = next(line for line in table.splitlines() if line.startswith(first_cell))
    return line.split()


def _new_tenant(function_server, id_token, prefix: str, name: str) -> tuple[list[str], list[str], str]:
    """A tenant the owner made with licensectl: (the owner's and the tenant admin's options, its id)."""
    base = ["--base-url", function_server.base_url]
    owner = [*base, "--token", id_token("root", role="owner")]
    tenant_id = f"{prefix}-{secrets.token_hex(3)}"
    admin = [*base, "--token", id_token("ops", role="admin", tenant=tenant_id)]
    assert run("licensectl", *owner, "create-tenant", name, "--id", tenant_id).returncode == 0
    return owner, admin, tenant_id


def test_licensectl_runs_a_license_through_its_life(function_server, id_token, call, make_license, rt):
    owner, admin, tenant_id = _new_tenant(function_server, id_token, "life", "Life & Co")
    issued = as_json(run("licensectl", *owner, "create-license", "--tenant", tenant_id, "--seats", "2",
                         "--tier", "pro", "--expires", "2099-01-01T00:00:00Z", "--json"))
    lic_id = issued["license"]["id"]
    assert call("acquire", {"license_key": issued["license_key"], "hardware_id": "hw"}, uid="worker")[0] == 201
    expired = make_license(seats=4, tenant_id=tenant_id, expires_ms=rt.clock.now_ms() - 60_000)

    # tenants (the owner's), licenses: state, seats in use and expiry of each
    tenants = run("licensectl", *owner, "tenants", "--all")
    assert tenants.returncode == 0 and _row(tenants.stdout, tenant_id)[:3] == [tenant_id, "Life", "&"]
    assert tenant_id in [t["id"] for t in as_json(run("licensectl", *owner, "tenants", "--all", "--json"))["tenants"]]
    listed = run("licensectl", *admin, "licenses")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == ["LICENSE", "TENANT", "STATE", "SEATS", "TIER", "EXPIRES"]
    assert _row(listed.stdout, lic_id) == [lic_id, tenant_id, "active", "1/2", "pro", "2099-01-01T00:00:00Z"]
    assert _row(listed.stdout, expired.license_id)[2:4] == ["expired", "0/4"]
    page = as_json(run("licensectl", *admin, "licenses", "--json"))
    assert {lic["id"]: lic["seats"] for lic in page["licenses"]}[lic_id] == {"used": 1, "max": 2}
    one_page = run("licensectl", *owner, "licenses", "--tenant", tenant_id, "--limit", "1")
    assert len(one_page.stdout.splitlines()) == 3 and "(more: --after lic_" in one_page.stdout

    # the owner changes entitlements; events show each change before -> after
    detail = run("licensectl", *admin, "license", lic_id)
    assert re.search(r"^seats\s+1 of 2 in use$", detail.stdout, re.M)
    assert re.search(r"^state\s+active$", detail.stdout, re.M)
    bad_time = run("licensectl", *owner, "update-license", lic_id, "--expires", "next tuesday")
    assert bad_time.returncode == 1 and "400 INVALID_REQUEST: expires_at" in bad_time.stderr
    updated = run("licensectl", *owner, "update-license", lic_id, "--seats", "3", "--tier", "team",
                  "--expires", "never", "--features", "build,debug", "--allowed-domain", "Life.Example")
    assert updated.returncode == 0, updated.stderr
    assert "updated (allowed_domains, expires_at, features, max_seats, tier)" in updated.stdout
    assert re.search(r"^expires\s+never$", updated.stdout, re.M) and "1 of 3 in use" in updated.stdout
    events = run("licensectl", *admin, "events", "--license", lic_id)
    assert events.returncode == 0, events.stderr
    for change in ("max_seats: 2 -> 3", "tier: pro -> team", "expires_at: 2099-01-01T00:00:00.000Z -> none",
                   'features: [] -> ["build", "debug"]', 'allowed_domains: [] -> ["life.example"]'):
        assert f"    {change}" in events.stdout
    assert "license.update" in events.stdout and "license.create" in events.stdout and "acquire" in events.stdout
    changes = next(e for e in as_json(run("licensectl", *admin, "events", "--license", lic_id, "--json"))["events"]
                   if e["type"] == "license.update")["details"]["changes"]
    assert changes["max_seats"] == {"before": 2, "after": 3}
    cleared = as_json(run("licensectl", *admin, "update-license", lic_id, "--no-allowed-domains", "--json"))
    assert cleared["license"]["allowed_domains"] == []

    # the tenant's admin: restrictions yes, entitlements no; suspends and resumes its own suspension only
    denied = run("licensectl", *admin, "update-license", lic_id, "--seats", "9", "--max-sessions-per-user", "1")
    assert denied.returncode == 1
    assert "403 FORBIDDEN: only the platform owner (the vendor) changes entitlements: max_seats" in denied.stderr
    assert "suspended (by admin)" in run("licensectl", *admin, "suspend", lic_id).stdout
    assert _row(run("licensectl", *admin, "licenses").stdout, lic_id)[2] == "suspended"
    assert "resumed: its state is active" in run("licensectl", *admin, "resume", lic_id).stdout
    assert run("licensectl", *owner, "suspend", lic_id).returncode == 0
    vendors = run("licensectl", *admin, "resume", lic_id)
    assert vendors.returncode == 1 and "403 FORBIDDEN: the vendor suspended this license" in vendors.stderr
    assert as_json(run("licensectl", *owner, "resume", lic_id, "--json"))["license"]["suspended"] is False

    # revoke: owner only, asks first; without a terminal only with --yes
    refused = run("licensectl", *owner, "revoke", lic_id)
    assert refused.returncode == 2 and "pass --yes" in refused.stderr
    assert as_json(run("licensectl", *owner, "license", lic_id, "--json"))["license"]["revoked_at"] is None
    assert "403 FORBIDDEN" in run("licensectl", *admin, "revoke", lic_id, "--yes").stderr
    revoked = run("licensectl", *owner, "revoke", lic_id, "--yes")
    assert revoked.returncode == 0 and f"license {lic_id} revoked" in revoked.stdout, revoked.stderr
    assert "sessions ended now: 1" in revoked.stdout
    assert _row(run("licensectl", *admin, "licenses").stdout, lic_id)[2:4] == ["revoked", "0/3"]
    again = as_json(run("licensectl", *owner, "revoke", lic_id, "--yes", "--json"))
    assert again["status"] == "already_revoked"
    usage = run("licensectl", *admin, "usage", lic_id, "--days", "2")
    assert usage.returncode == 0 and usage.stdout.startswith("now: 0 of 3 seats")


def test_licensectl_shows_and_replaces_a_seat_policy(function_server, id_token, tmp_path):
    owner, admin, tenant_id = _new_tenant(function_server, id_token, "pol", "Policy Co")
    lic_id = as_json(run("licensectl", *owner, "create-license", "--tenant", tenant_id, "--seats", "10",
                         "--json"))["license"]["id"]
    assert "none: any user may hold any of its seats" in run("licensectl", *admin, "policy", lic_id).stdout
    detail = run("licensectl", *admin, "license", lic_id).stdout
    assert re.search(r"^seat policy\s+none \(any user, any seat\)$", detail, re.M), detail

    # the tenant's admin writes groups, include/exclude, reservations and maximums from a file
    policy = {
        "groups": [{"name": "eng", "uids": ["u-ada", "u-bob"], "domains": ["Eng.Acme.com"]},
                   {"name": "contractors", "claim": {"name": "team", "value": "contract"}},
                   {"name": "many", "uids": [f"u-{i}" for i in range(12)]}],
        "include": {"groups": ["eng", "contractors", "many"], "users": ["grace@acme.com"]},
        "exclude": {"users": ["mallory"], "hardware": ["stolen-laptop"]},
        "reserve": [{"group": "eng", "seats": 2}, {"group": "many", "seats": 1}],
        "max": [{"group": "contractors", "seats": 1}],
    }
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    done = run("licensectl", *admin, "set-policy", lic_id, "--file", str(path))
    assert done.returncode == 0, done.stderr
    shown = done.stdout
    assert f"license {lic_id}: seat policy replaced" in shown and f"seat policy of {lic_id} (10 seats)" in shown
    assert re.search(r"^  eng\s+uids u-ada, u-bob; domains eng.acme.com$", shown, re.M), shown
    assert re.search(r"^  contractors\s+claim team = contract$", shown, re.M)
    assert "uids u-0, u-1, u-2, u-3, u-4, u-5, u-6, u-7, u-8, u-9 (+2 more; --json shows all)" in shown
    assert re.search(r"^include\s+groups eng, contractors, many; users grace@acme.com  \(only these may hold a seat\)$",
                     shown, re.M)
    assert re.search(r"^exclude\s+users mallory; hardware stolen-laptop  \(never hold a seat\)$", shown, re.M)
    assert re.search(r"^reserve\s+eng: 2 seats  \(held for", shown, re.M)
    assert re.search(r"^\s+many: 1 seat$", shown, re.M)
    assert re.search(r"^max\s+contractors: at most 1 seat  \(the group's members together\)$", shown, re.M)
    assert re.search(r"^overdraft\s+none$", shown, re.M)

    # the overdraft is the vendor's: the admin is refused, the owner grants 1.25x (from stdin)
    path.write_text(json.dumps({**policy, "overdraft_ratio": 1.25}))
    denied = run("licensectl", *admin, "set-policy", lic_id, "--file", str(path))
    assert denied.returncode == 1 and "403 FORBIDDEN: only the platform owner (the vendor) changes entitlements: " \
        "policy.overdraft_ratio" in denied.stderr
    granted = subprocess.run([str(REPO / "scripts" / "licensectl"), *owner, "set-policy", lic_id, "--file", "-"],
                             input=path.read_text(), capture_output=True, text=True, timeout=120)
    assert granted.returncode == 0, granted.stderr
    assert re.search(r"^overdraft\s+ratio 1.25x: 2 seats beyond max_seats 10 \(12 in all\)", granted.stdout, re.M)
    summary = run("licensectl", *admin, "license", lic_id).stdout
    assert re.search(r"^seat policy\s+3 groups; include 3 groups, 1 user; exclude 1 user, 1 machine; "
                     r"reserve eng 2, many 1; max contractors 1; overdraft \+2 \(ratio 1.25x\)$",
                     summary, re.M), summary

    # --json is the policy itself: edited and given back, the admin keeps the vendor's overdraft
    stored = as_json(run("licensectl", *admin, "policy", lic_id, "--json"))
    assert stored["overdraft_ratio"] == 1.25 and stored["groups"][0]["domains"] == ["eng.acme.com"]
    path.write_text(json.dumps({**stored, "max": [{"group": "contractors", "seats": 2}]}))
    answer = as_json(run("licensectl", *admin, "set-policy", lic_id, "--file", str(path), "--json"))
    assert answer["license"]["policy"]["max"] == [{"group": "contractors", "seats": 2}]
    events = run("licensectl", *admin, "events", "--license", lic_id).stdout
    assert "    policy: {} -> {" in events and '"overdraft_ratio": 1.25' in events  # before -> after

    # a policy that cannot apply: the server's reasons; a file that is no policy: a usage error
    path.write_text(json.dumps({**stored, "reserve": [{"group": "eng", "seats": 11}]}))
    bad = run("licensectl", *owner, "set-policy", lic_id, "--file", str(path))
    assert bad.returncode == 1 and "400 INVALID_REQUEST: policy: " in bad.stderr
    assert "reservations (11 seats) exceed max_seats (10)" in bad.stderr
    for content, says in (("{not json", "is not JSON"), ("[]", "must be a JSON object")):
        path.write_text(content)
        refused = run("licensectl", *admin, "set-policy", lic_id, "--file", str(path))
        assert (refused.returncode, refused.stdout) == (2, "") and says in refused.stderr
    missing = run("licensectl", *admin, "set-policy", lic_id, "--file", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr

    # reset (the vendor: it takes the overdraft away too)
    assert run("licensectl", *admin, "set-policy", lic_id, "--reset").returncode == 1
    reset = run("licensectl", *owner, "set-policy", lic_id, "--reset")
    assert reset.returncode == 0 and "seat policy reset" in reset.stdout and "none: any user" in reset.stdout
    assert as_json(run("licensectl", *admin, "policy", lic_id, "--json")) == {}

    # the vendor sells a license with its policy
    path.write_text(json.dumps(stored))
    sold = as_json(run("licensectl", *owner, "create-license", "--tenant", tenant_id, "--seats", "10", "--policy",
                       str(path), "--json"))
    assert sold["license"]["policy"] == stored


def test_licensectl_issues_machine_keys_and_trims_the_queue(function_server, id_token, call):
    owner, admin, tenant_id = _new_tenant(function_server, id_token, "ci", "CI Co")
    issued = as_json(run("licensectl", *owner, "create-license", "--tenant", tenant_id, "--seats", "1",
                         "--ci-seats", "2", "--support-contact", "Acme IT, ext. 100", "--json"))
    lic_id, license_key = issued["license"]["id"], issued["license_key"]
    assert (issued["license"]["ci_seats"], issued["license"]["support_contact"]) == (2, "Acme IT, ext. 100")
    denied = run("licensectl", *admin, "update-license", lic_id, "--ci-seats", "5")
    assert denied.returncode == 1 and "entitlements: ci_seats" in denied.stderr
    updated = run("licensectl", *owner, "update-license", lic_id, "--ci-seats", "3", "--no-support-contact")
    assert updated.returncode == 0, updated.stderr
    assert re.search(r"^ci seats\s+0 of 3 in use \(machine keys\)$", updated.stdout, re.M), updated.stdout
    assert re.search(r"^support\s+\(none\)$", updated.stdout, re.M)

    # a machine key, printed once; listed without it; it holds a CI seat; revoked, its seat is freed
    made = run("licensectl", *admin, "create-key", "nightly builds", "--license", lic_id)
    assert made.returncode == 0, made.stderr
    secret = re.search(r"^  key: (ck_\S+)$", made.stdout, re.M).group(1)
    key_id = re.search(r"^machine key (mk_\w+) \(nightly builds\)", made.stdout, re.M).group(1)
    listed = run("licensectl", *admin, "keys")
    assert listed.returncode == 0 and secret not in listed.stdout
    assert _row(listed.stdout, key_id)[:5] == [key_id, "nightly", "builds", tenant_id, "seat"]
    status, seat, _ = call("acquire", {"license_key": license_key, "hardware_id": "runner-1"}, token=secret)
    assert status == 201 and seat["ci"] is True
    holders = run("licensectl", *admin, "holders", lic_id).stdout
    assert "0 of 1 seats in use; CI seats 1 of 3" in holders and f"key:{key_id}" in holders and "live, CI seat" in holders
    revoked = run("licensectl", *admin, "revoke-key", key_id)
    assert revoked.returncode == 0 and "revoked; sessions ended now: 1" in revoked.stdout
    assert "revoked" in _row(run("licensectl", *admin, "keys").stdout, key_id)[-2]
    assert run("licensectl", *admin, "revoke-key", "mk_00000000000000000000").returncode == 1

    # the wait queue: who waits, and one taken out
    assert "has no wait queue" in run("licensectl", *admin, "queue", lic_id).stdout
    subprocess.run([str(REPO / "scripts" / "licensectl"), *admin, "set-policy", lic_id, "--file", "-"],
                   input='{"queue": {}}', capture_output=True, text=True, timeout=120, check=True)
    assert "has no wait queue" not in run("licensectl", *admin, "queue", lic_id).stdout
    assert call("acquire", {"license_key": license_key, "hardware_id": "hw"}, uid="dev")[0] == 201
    ticket = call("acquire", {"license_key": license_key, "hardware_id": "hw", "wait": True}, uid="waiter")[1]
    shown = run("licensectl", *admin, "queue", lic_id)
    assert shown.returncode == 0 and _row(shown.stdout, "1")[1:5] == [ticket["ticket"], "waiter", "hw", "-"]
    removed = run("licensectl", *admin, "remove-ticket", lic_id, ticket["ticket"])
    assert removed.returncode == 0 and "removed from the queue" in removed.stdout
    assert "nobody waits" in run("licensectl", *admin, "queue", lic_id).stdout
    events = run("licensectl", *admin, "events", "--tenant", tenant_id).stdout
    assert "key.create" in events and "key.revoke" in events


def _on_a_terminal(args: list[str], answer: str) -> subprocess.CompletedProcess:
    """licensectl with its stdin on a terminal, answering its question with `answer`."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode() + b"\n")
        return subprocess.run([str(REPO / "scripts" / "licensectl"), *args], stdin=terminal, capture_output=True,
                              text=True, timeout=120)
    finally:
        os.close(terminal)
        os.close(controller)


def test_revoke_asks_on_a_terminal(function_server, id_token, make_license):
    owner = ["--base-url", function_server.base_url, "--token", id_token("root", role="owner")]
    lic = make_license(seats=5)
    kept = _on_a_terminal([*owner, "revoke", lic.license_id], "n")
    assert kept.returncode == 1 and "not revoked" in kept.stderr
    assert f"Revoke license {lic.license_id} of tenant {lic.tenant_id} (0 of 5 seats in use)?" in kept.stderr
    assert run("licensectl", *owner, "license", lic.license_id, "--json").stdout.count('"revoked_at": null') == 1
    gone = _on_a_terminal([*owner, "revoke", lic.license_id], "y")
    assert gone.returncode == 0 and f"license {lic.license_id} revoked" in gone.stdout, gone.stderr


def test_licensectl_reports_errors_plainly(function_server, id_token):
    admin = ["--base-url", function_server.base_url, "--token", id_token("ops", role="admin", tenant="some-tenant")]
    missing = run("licensectl", *admin, "holders", "lic_00000000000000000000")
    bad = run("licensectl", *admin, "create-license", "--tenant", "some-tenant", "--seats", "0")
    unauthenticated = run("licensectl", "--base-url", function_server.base_url, "--token", "junk", "licenses")
    assert missing.returncode == 1 and "404 NOT_FOUND" in missing.stderr
    assert bad.returncode == 1 and "max_seats" in bad.stderr
    assert unauthenticated.returncode == 1 and "401 UNAUTHENTICATED" in unauthenticated.stderr


@pytest.mark.parametrize(("args", "status", "says"), [
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    (["create-license", "--tenant", "t-1", "--seats", "many"], 2, "--seats: invalid int value: 'many'"),
    (["update-license", "lic_00000000000000000000"], 2, "nothing to change"),
    (["update-license", "lic_00000000000000000000", "--allowed-domain", "a.com", "--no-allowed-domains"], 2,
     "contradict"),
    (["license", "../../tenants"], 1, "404 NOT_FOUND"),
    (["set-policy", "lic_00000000000000000000"], 2, "one of the arguments --file --reset is required"),
    (["set-policy", "lic_00000000000000000000", "--file", "-", "--reset"], 2, "not allowed with argument"),
    (["events", "--limit", "0"], 1, "400 INVALID_REQUEST"),
    (["usage", "lic_00000000000000000000", "--days", "0"], 1, "400 INVALID_REQUEST"),
    (["--token", "not a token", "licenses"], 2, "--token is not an ID token"),
    (["--base-url", "localhost:8080", "licenses"], 2, "is not an http(s) URL"),
    (["--base-url", "https://europe-west1-p.cloudfunctions.net/staging-acquire", "licenses"], 2,
     "names the function 'staging-acquire', not the admin function"),
    (["--base-url", "http://127.0.0.1:9/{name}", "licenses"], 3, "cannot reach http://127.0.0.1:9/admin"),
])
def test_bad_input_gets_a_sentence_and_a_status_never_a_traceback(function_server, id_token, args, status, says):
    env = {**os.environ, "LICENSECTL_BASE_URL": function_server.base_url,
           "LICENSECTL_TOKEN": id_token("ops", role="admin", tenant="some-tenant")}
    done = run("licensectl", *args, env=env)
    assert (done.returncode, done.stdout) == (status, ""), done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr


@pytest.fixture
def not_the_admin_function():
    """An HTTP server answering everything with an HTML page, as a wrong URL's front end would."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = b"<html><body><h1>Error 404 (Not Found)!!1</h1><p>That's an error.</p></body></html>"
            self.send_response(404 if "missing" in self.path else 200)
            self.send_header("Content-Type", "text/html; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_answer_that_is_not_the_admin_function_is_named(not_the_admin_function, id_token):
    token = ["--token", id_token("root", role="owner")]
    missing = run("licensectl", "--base-url", f"{not_the_admin_function}/missing", *token, "tenants")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "404 Not Found: not an answer of the admin function: Error 404 (Not Found)!!1 That's an error." \
        in missing.stderr and "the admin function? (--base-url" in missing.stderr
    html = run("licensectl", "--base-url", not_the_admin_function, *token, "licenses")
    assert html.returncode == 1 and "200: not an answer of the admin function" in html.stderr, html.stderr


def test_the_admin_function_is_found_from_any_form_of_url(function_server, id_token):
    from cli.admin_api import admin_function_url

    base = function_server.base_url
    token = id_token("root", role="owner")
    for given in (base, f"{base}/", f"{base}/{{name}}", f"{base}/admin", f"{base}/admin/"):
        env = {**os.environ, "LICENSECTL_BASE_URL": given, "LICENSECTL_TOKEN": token}
        assert "tenants" in as_json(run("licensectl", "tenants", "--limit", "1", "--json", env=env)), given
    deployed = "https://europe-west1-my-p.cloudfunctions.net"
    assert admin_function_url(f"{deployed}/staging-{{name}}") == f"{deployed}/staging-admin"
    assert admin_function_url(f"{deployed}/staging-admin/") == f"{deployed}/staging-admin"
    assert admin_function_url("https://staging-admin-abc123-ew.a.run.app") == "https://staging-admin-abc123-ew.a.run.app"
    assert admin_function_url("https://proxy.example.com/licensing") == "https://proxy.example.com/licensing/admin"


def test_dev_token_mints_a_token_the_local_stack_accepts(stack, call, make_license):
    result = run("dev-token", "--uid", "dora", "--tenant", "acme", "--role", "admin", "--project", stack.project_id)
    assert result.returncode == 0, result.stderr
    lic = make_license()
    status, _, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, token=result.stdout.strip())
    assert status == 201


def test_a_rate_limited_listing_waits_and_asks_again(monkeypatch):
    """429 RATE_LIMITED is answered before anything is done: licensectl waits as told and retries."""
    import httpx

    from cli.admin_api import AdminClient

    answers = iter([httpx.Response(429, headers={"Retry-After": "1"}, json={"error": {"code": "RATE_LIMITED",
                                                                                       "message": "slow down"}}),
                    httpx.Response(200, json={"tenants": [], "next_after": None})])
    client = AdminClient("http://admin.invalid/admin", "t")
    monkeypatch.setattr(client._http, "request", lambda *a, **k: next(answers))
    started = time.monotonic()
    assert client.call("GET", "tenants") == {"tenants": [], "next_after": None}
    assert time.monotonic() - started >= 0.9


def test_licensectl_reports_a_licenses_use_and_fetches_its_statement(function_server, id_token, call):
    owner, admin, tenant_id = _new_tenant(function_server, id_token, "usage", "Usage Ltd")
    issued = as_json(run("licensectl", *owner, "create-license", "--tenant", tenant_id, "--seats", "1", "--json"))
    lic_id, key = issued["license"]["id"], issued["license_key"]
    assert call("acquire", {"license_key": key, "hardware_id": "hw"}, uid="report-ann")[0] == 201
    assert call("acquire", {"license_key": key, "hardware_id": "hw"}, uid="report-bob")[0] == 409
    today = time.strftime("%Y-%m-%d", time.gmtime())

    hourly = run("licensectl", *admin, "report", lic_id, "--granularity", "hour", "--from", today)
    assert hourly.returncode == 0, hourly.stderr
    assert re.search(r"^peak\s+1 of 1 seats", hourly.stdout, re.M), hourly.stdout
    assert "daily peaks" in hourly.stdout and "* live:" in hourly.stdout
    now = as_json(run("licensectl", *admin, "report", lic_id, "--granularity", "hour", "--from", today, "--json"))
    assert (now["series"][-1]["peak"], now["series"][-1]["denials_no_seat"]) == (1, 1)
    csv_text = run("licensectl", *admin, "report", lic_id, "--from", today, "--csv")
    assert csv_text.returncode == 0 and csv_text.stdout.startswith("\ufeffstart,final,max_seats,peak,")
    users = run("licensectl", *admin, "report-users", lic_id, "--from", today)
    assert users.returncode == 0 and "report-ann" in users.stdout and "report-bob" not in users.stdout
    overview = run("licensectl", *admin, "tenant-report", "--from", today)
    assert overview.returncode == 0 and lic_id in overview.stdout, overview.stderr
    bad = run("licensectl", *admin, "report", lic_id, "--from", "yesterday")
    assert bad.returncode == 2 and "neither a date" in bad.stderr

    # a statement of the month of the last hour closed (the history starts there)
    last_closed = calendar.timegm(time.strptime(now["through"][:13], "%Y-%m-%dT%H")) - 3600
    signed = run("licensectl", *admin, "statement", lic_id, "--month", time.strftime("%Y-%m", time.gmtime(last_closed)))
    assert signed.returncode == 0 and signed.stdout.count(".") == 2, signed.stderr
    assert run("licensectl", *admin, "statement", lic_id, "--month", "2026-13").returncode == 2
