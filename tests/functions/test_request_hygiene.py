"""What every seat function does with bad requests, before any business logic."""

from __future__ import annotations

import pytest

SEAT_FUNCTIONS = ["acquire", "heartbeat", "release", "validate"]


@pytest.mark.parametrize("name", SEAT_FUNCTIONS)
def test_wrong_method_is_405_with_allow(call, name):
    status, body, headers = call(name, method="GET")
    assert status == 405 and body["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert headers["Allow"] == "POST"


@pytest.mark.parametrize("name", SEAT_FUNCTIONS)
def test_unknown_sub_path_is_404(call, name):
    status, body, _ = call(name, {}, path="/nope")
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("name", SEAT_FUNCTIONS)
def test_missing_token_is_401(call, name):
    status, body, _ = call(name, {"session_id": "x"}, uid=None)
    assert status == 401 and body["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-jwt", "Bearer a.b.c"])
def test_malformed_authorization_is_401(call, header):
    status, body, _ = call("acquire", {"license_key": "x", "hardware_id": "y"}, uid=None, headers={"Authorization": header})
    assert status == 401 and body["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("name", SEAT_FUNCTIONS)
def test_malformed_json_is_400(function_clients, id_token, name):
    response = function_clients[name].post(
        "/", data=b'{"license_key": ', headers={"Authorization": f"Bearer {id_token()}", "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize("name", SEAT_FUNCTIONS)
def test_non_json_content_type_is_415(function_clients, id_token, name):
    response = function_clients[name].post(
        "/", data=b"session_id=x", headers={"Authorization": f"Bearer {id_token()}",
                                            "Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize("name", SEAT_FUNCTIONS)
def test_oversized_body_is_413(call, name):
    status, body, _ = call(name, {"session_id": "x" * (70 * 1024)})
    assert status == 413 and body["error"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "license_key"),
        ({"license_key": 123, "hardware_id": "hw"}, "license_key"),
        ({"license_key": "CDT-x", "hardware_id": ""}, "hardware_id"),
        ({"license_key": "CDT-x", "hardware_id": "h" * 129}, "hardware_id"),
        ({"license_key": "CDT-x", "hardware_id": "line\nbreak"}, "hardware_id"),
        ({"license_key": "CDT-x", "hardware_id": "hw", "client": "v1"}, "client"),
        ([], "(body)"),
    ],
)
def test_wrong_shapes_are_400_naming_the_field(call, body, field):
    status, answer, _ = call("acquire", body)
    assert status == 400 and answer["error"]["code"] == "INVALID_REQUEST"
    assert field in [f["field"] for f in answer["error"]["fields"]]


def test_errors_never_leak_internals(call):
    status, body, _ = call("heartbeat", {"session_id": 5})
    assert status == 400
    assert set(body) == {"error"} and "Traceback" not in str(body)


@pytest.mark.parametrize("raw, why", [
    (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
    (b'{"license_key": "CDT-x", "hardware_id": "hw", "n": ' + b"9" * 5000 + b"}", "number is too long"),
    (b'{"license_key": "CDT-x", "hardware_id": "\\ud800"}', "lone UTF-16 surrogate"),
])
def test_json_edge_cases_are_400_with_one_log_line_and_no_trace(function_clients, id_token, capsys, raw, why):
    response = function_clients["acquire"].post(
        "/", data=raw, headers={"Authorization": f"Bearer {id_token()}", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "INVALID_REQUEST" and why in response.get_json()["error"]["message"]
    logged = capsys.readouterr()
    assert "Traceback" not in logged.out + logged.err
    assert [line for line in logged.out.splitlines() if '"function":"acquire"' in line.replace(" ", "")]


@pytest.mark.parametrize("uid", ["alice\nevil", "tab\there", "\ud800lone", "del\x7f"])
def test_unusable_uids_are_refused_at_the_auth_boundary(call, make_license, uid):
    lic = make_license()
    status, body, _ = call("acquire", {"license_key": lic.key, "hardware_id": "hw"}, uid=uid)
    assert status == 401 and "uid" in body["error"]["message"]


def test_a_uid_with_a_newline_is_not_counted_as_another_user(call, make_license):
    """'alice\\nevil' once shared alice's per-user count (uid and hardware joined by a newline)."""
    lic = make_license(seats=5, max_sessions_per_user=1)
    assert call("acquire", {"license_key": lic.key, "hardware_id": "box"}, uid="alice")[0] == 201
    assert call("acquire", {"license_key": lic.key, "hardware_id": "box"}, uid="alice\nevil")[0] == 401
    assert call("acquire", {"license_key": lic.key, "hardware_id": "other"}, uid="alice")[0] == 409


@pytest.mark.parametrize("client", [{"hostname": "box\x1b[2J"}, {"version": "1.0\nFAKE LOG LINE"}])
def test_client_strings_shown_to_administrators_hold_no_control_characters(call, make_license, client):
    lic = make_license()
    status, answer, headers = call("acquire", {"license_key": lic.key, "hardware_id": "hw", "client": client})
    assert status == 400 and [f["field"] for f in answer["error"]["fields"]] == [f"client.{next(iter(client))}"]


def test_answers_are_never_sniffed_as_html(call, make_license):
    lic = make_license()
    status, _, headers = call("acquire", {"license_key": lic.key, "hardware_id": "hw",
                                          "client": {"hostname": "<script>alert(1)</script>"}})
    assert status == 201 and headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
