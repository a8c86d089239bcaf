"""licensectl's conflict-flag commands (scripts/cli/anomaly_commands.py) and update-license
--anomaly-rule, over the functions as served: a flag raised for real (seats acquired over
HTTP, the sweep run with the scheduler's token), listed, acknowledged, and hidden from
another tenant."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.system.test_cli import _new_tenant, _row, as_json, run


@pytest.fixture(scope="module")
def watching_server(stack, tmp_path_factory):
    """The functions evaluating the conflict rules at every sweep (not once per 5 minutes per stack)."""
    log = tmp_path_factory.mktemp("logs") / "functions-anomalies.log"
    server = stack.serve_functions(workers=1, threads=8, log_path=log, extra_env={"ANOMALY_CHECK_INTERVAL_S": "0"})
    yield server
    server.stop()


def _acquire(server, key: str, hardware_id: str, token: str) -> None:
    answer = httpx.post(f"{server.base_url}/acquire", json={"license_key": key, "hardware_id": hardware_id},
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 201, answer.text


def test_licensectl_lists_and_acknowledges_a_flag_the_sweep_raised(watching_server, stack, id_token, make_license):
    owner, admin, tenant_id = _new_tenant(watching_server, id_token, "anomaly", "Anomaly Ltd")
    lic = make_license(seats=5, tenant_id=tenant_id)

    # the tenant's admin sets two rules; the others keep theirs; `license` shows them all
    updated = run("licensectl", *admin, "update-license", lic.license_id, "--anomaly-rule", "hardware_per_user=1",
                  "--anomaly-rule", "grants_per_user=10/600")
    assert updated.returncode == 0, updated.stderr
    assert f"license {lic.license_id} updated (anomaly_rules)" in updated.stdout
    rules = ("hardware_per_user 1/24h, users_per_hardware 3/24h, addresses_per_session 3/1h, grants_per_user 10/10m")
    assert re.search(rf"^anomaly rules\s+{re.escape(rules)}$", updated.stdout, re.M), updated.stdout

    # one user on two machines, through the served acquire; the sweep raises the flag
    sharer = id_token("sharer")
    for hardware_id in ("desk-1", "desk-2"):
        _acquire(watching_server, lic.key, hardware_id, sharer)
    swept = httpx.post(f"{watching_server.base_url}/sweep", timeout=60,
                       headers={"Authorization": f"Bearer {stack.scheduler_token()}"})
    assert swept.status_code == 200 and not swept.json().get("skipped"), swept.text
    assert swept.json()["anomalies"]["raised"] >= 1, swept.text

    other_admin = ["--base-url", watching_server.base_url, "--token",
                   id_token("ops", role="admin", tenant=f"{tenant_id}-other")]
    with ThreadPoolExecutor(4) as pool:  # independent reads, at once
        listed, as_data, owners, licenses_view = pool.map(lambda args: run("licensectl", *args), [
            [*admin, "anomalies", "--license", lic.license_id],
            [*admin, "anomalies", "--license", lic.license_id, "--json"],
            [*owner, "anomalies", "--tenant", tenant_id, "--state", "open", "--json"],
            [*admin, "license", lic.license_id]])

    # the table: flag, license, rule, subject, count over the threshold in its window, last seen, state
    [flag] = as_json(as_data)["anomalies"]
    assert (flag["license"], flag["tenant"], flag["rule"], flag["subject"], flag["state"]) == (
        lic.license_id, tenant_id, "hardware_per_user", "sharer", "open")
    assert flag["evidence"]["count"] == 2 and sorted(flag["evidence"]["examples"]) == ["desk-1", "desk-2"]
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == ["FLAG", "LICENSE", "RULE", "SUBJECT", "COUNT", "LAST", "SEEN",
                                                     "STATE"]
    row = _row(listed.stdout, flag["id"])
    assert row[:9] == [flag["id"], lic.license_id, "hardware_per_user", "sharer", "2", ">", "1", "in", "24h"]
    assert row[9].endswith("Z") and row[10:] == ["open"]
    assert [f["id"] for f in as_json(owners)["anomalies"]] == [flag["id"]]  # GET /admin/anomalies, the owner's
    assert licenses_view.returncode == 0 and "hardware_per_user 1/24h" in licenses_view.stdout

    # acknowledged, with a note; then nothing is open
    acked = run("licensectl", *admin, "acknowledge-anomaly", flag["id"], "--note", "a desktop and a laptop")
    assert acked.returncode == 0, acked.stderr
    assert f"anomaly {flag['id']} acknowledged" in acked.stdout
    assert re.search(r"^state\s+acknowledged by ops$", acked.stdout, re.M)
    assert re.search(r"^note\s+a desktop and a laptop$", acked.stdout, re.M)
    assert "raised again only if its count grows past 2" in acked.stdout

    with ThreadPoolExecutor(6) as pool:
        still_open, acked_rows, again, hidden, foreign_ack, nothing = pool.map(lambda args: run("licensectl", *args), [
            [*admin, "anomalies", "--license", lic.license_id, "--state", "open"],
            [*admin, "anomalies", "--state", "acknowledged"],
            [*admin, "acknowledge-anomaly", flag["id"]],
            [*other_admin, "anomalies", "--license", lic.license_id],
            [*other_admin, "acknowledge-anomaly", flag["id"]],
            [*other_admin, "anomalies", "--tenant", tenant_id]])
    assert (still_open.returncode, still_open.stdout.strip()) == (0, "(no open anomalies)"), still_open.stderr
    assert _row(acked_rows.stdout, flag["id"])[-3:] == ["acknowledged", "by", "ops"]
    assert again.returncode == 1 and "400 INVALID_REQUEST: this flag is acknowledged already" in again.stderr

    # another tenant's admin: nothing of it, as if it did not exist
    for refused in (hidden, foreign_ack):
        assert refused.returncode == 1 and "404 NOT_FOUND" in refused.stderr and refused.stdout == ""
        assert "Traceback" not in refused.stderr
    assert (nothing.returncode, nothing.stdout.strip()) == (0, "(no anomalies)"), nothing.stderr


def test_a_bad_anomaly_rule_is_a_usage_error():
    base = ["--base-url", "http://127.0.0.1:9", "--token", "not-used"]  # refused before any call
    with ThreadPoolExecutor(3) as pool:
        unknown, window, twice = pool.map(lambda rule: run("licensectl", *base, "update-license", "lic_x", *rule), [
            ["--anomaly-rule", "seats_per_user=3"],
            ["--anomaly-rule", "grants_per_user=10/5"],
            ["--anomaly-rule", "grants_per_user=10", "--anomaly-rule", "grants_per_user=20"]])
    assert unknown.returncode == 2 and "'seats_per_user' is not a rule; the rules: hardware_per_user, " \
                                      "users_per_hardware, addresses_per_session, grants_per_user" in unknown.stderr
    assert window.returncode == 2 and "WINDOW_S is 60 to 604800" in window.stderr
    assert twice.returncode == 2 and "--anomaly-rule grants_per_user is given twice" in twice.stderr
    for done in (unknown, window, twice):
        assert done.stdout == "" and "Traceback" not in done.stderr
