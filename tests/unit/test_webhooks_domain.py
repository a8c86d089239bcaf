"""Webhooks' shared rules (shared/domain/webhooks.py): signatures, where a webhook may go, retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket

import pytest

from shared.domain.webhooks import (
    GIVE_UP_AFTER_S,
    ID_HEADER,
    RETRYABLE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TYPE_HEADER,
    WebhookAddressError,
    WebhookSignatureError,
    address_problem,
    attempt_times_s,
    delivered,
    host_problem,
    new_webhook_secret,
    next_attempt_delay_s,
    resolve_and_check,
    signature_headers,
    signing_secrets,
    verify_signature,
    webhook_url_problem,
)

NOW = 1_767_225_600
BODY = json.dumps({"id": "ev_1", "type": "license.suspended", "time": "2026-01-01T00:00:00.000Z",
                   "tenant": "t1", "license": "lic_1", "data": {"actor": "admin"}}).encode()
OLD, NEW = new_webhook_secret(), new_webhook_secret()


def _headers(secrets=(NEW,), body=BODY, now=NOW) -> dict[str, str]:
    return signature_headers(body, "ev_1", "license.suspended", list(secrets), now)


def _reason(body, headers, secrets, now=NOW, **kwargs) -> str:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_signature(body, headers, secrets, now_s=now, **kwargs)
    return caught.value.reason


# --- secrets and signatures -------------------------------------------------------------------

def test_a_secret_is_whsec_and_256_random_bits_base64url_unpadded():
    secret = new_webhook_secret()
    assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{43}", secret)
    assert secret != new_webhook_secret()


def test_headers_are_exactly_the_documented_ones():
    headers = _headers()
    expected = hmac.new(NEW.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers == {ID_HEADER: "ev_1", TYPE_HEADER: "license.suspended", TIMESTAMP_HEADER: str(NOW),
                       SIGNATURE_HEADER: f"v1={expected}"}
    assert list(headers) == ["Coditect-Webhook-Id", "Coditect-Webhook-Type", "Coditect-Webhook-Timestamp",
                             "Coditect-Webhook-Signature"]


def test_a_signed_delivery_verifies():
    assert verify_signature(BODY, _headers(), [NEW], now_s=NOW) == NOW


def test_a_tampered_body_fails():
    assert _reason(BODY.replace(b"suspended", b"resumed"), _headers(), [NEW]) == "no_matching_signature"


def test_a_tampered_timestamp_fails():
    headers = {**_headers(), TIMESTAMP_HEADER: str(NOW + 1)}
    assert _reason(BODY, headers, [NEW], now=NOW + 1) == "no_matching_signature"


def test_a_wrong_secret_fails():
    assert _reason(BODY, _headers(), [OLD]) == "no_matching_signature"
    assert _reason(BODY, _headers(), [new_webhook_secret()]) == "no_matching_signature"


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_a_timestamp_within_tolerance_either_way_verifies(skew):
    assert verify_signature(BODY, _headers(), [NEW], now_s=NOW + skew) == NOW


@pytest.mark.parametrize("skew", [-301, 301, 86_400])
def test_a_timestamp_outside_tolerance_fails(skew):
    assert _reason(BODY, _headers(), [NEW], now=NOW + skew) == "timestamp_out_of_tolerance"


def test_the_tolerance_is_the_receivers_choice():
    assert verify_signature(BODY, _headers(), [NEW], now_s=NOW + 900, tolerance_s=900) == NOW
    assert _reason(BODY, _headers(), [NEW], now=NOW + 1, tolerance_s=0) == "timestamp_out_of_tolerance"


def test_a_forgery_is_reported_as_such_even_when_stale():
    assert _reason(BODY, _headers([OLD]), [NEW], now=NOW + 10_000) == "no_matching_signature"


def test_during_a_rotation_both_secrets_sign_and_either_verifies():
    headers = _headers([NEW, OLD])
    assert re.fullmatch(r"v1=[0-9a-f]{64},v1=[0-9a-f]{64}", headers[SIGNATURE_HEADER])
    assert verify_signature(BODY, headers, [NEW], now_s=NOW) == NOW
    assert verify_signature(BODY, headers, [OLD], now_s=NOW) == NOW
    assert verify_signature(BODY, headers, [OLD, NEW], now_s=NOW) == NOW
    # a receiver that already holds both accepts deliveries signed with only one of them
    assert verify_signature(BODY, _headers([OLD]), [NEW, OLD], now_s=NOW) == NOW
    assert _reason(BODY, headers, [new_webhook_secret()]) == "no_matching_signature"


def test_the_secrets_signed_with_follow_the_overlap_window():
    assert signing_secrets(NEW, OLD, NOW + 10, NOW) == [NEW, OLD]
    assert signing_secrets(NEW, OLD, NOW, NOW) == [NEW]
    assert signing_secrets(NEW, None, None, NOW) == [NEW]


def test_header_names_are_case_insensitive():
    headers = {name.lower(): value for name, value in _headers().items()}
    assert verify_signature(BODY, headers, [NEW], now_s=NOW) == NOW
    upper = {name.upper(): value for name, value in _headers().items()}
    assert verify_signature(BODY, upper, [NEW], now_s=NOW) == NOW


def test_schemes_other_than_v1_are_skipped_and_spaces_tolerated():
    headers = _headers()
    headers[SIGNATURE_HEADER] = f"v2=whatever, {headers[SIGNATURE_HEADER]}"
    assert verify_signature(BODY, headers, [NEW], now_s=NOW) == NOW


@pytest.mark.parametrize("change, reason", [
    ({TIMESTAMP_HEADER: None}, "missing_header"),
    ({SIGNATURE_HEADER: None}, "missing_header"),
    ({TIMESTAMP_HEADER: ""}, "malformed_header"),
    ({TIMESTAMP_HEADER: "-5"}, "malformed_header"),
    ({TIMESTAMP_HEADER: "1.5"}, "malformed_header"),
    ({TIMESTAMP_HEADER: "9" * 5000}, "malformed_header"),
    ({SIGNATURE_HEADER: ""}, "malformed_header"),
    ({SIGNATURE_HEADER: "abc"}, "malformed_header"),
    ({SIGNATURE_HEADER: "v1="}, "malformed_header"),
    ({SIGNATURE_HEADER: "v1=zz"}, "malformed_header"),
    ({SIGNATURE_HEADER: "v1=" + "0" * 63}, "malformed_header"),
    ({SIGNATURE_HEADER: "v2=" + "0" * 64}, "malformed_header"),
    ({SIGNATURE_HEADER: "v1=" + "0" * 64 + ",,"}, "malformed_header"),
    ({SIGNATURE_HEADER: "v1=" + "0" * 64}, "no_matching_signature"),
])
def test_malformed_or_missing_headers_fail_naming_why(change, reason):
    headers = _headers()
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    with pytest.raises(WebhookSignatureError) as caught:
        verify_signature(BODY, headers, [NEW], now_s=NOW)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)
    if reason == "missing_header":
        assert next(iter(change)) in str(caught.value)


def test_one_header_twice_with_different_values_is_malformed():
    headers = _headers()
    headers[TIMESTAMP_HEADER.lower()] = str(NOW + 1)
    assert _reason(BODY, headers, [NEW]) == "malformed_header"


def test_the_receivers_own_mistakes_are_plain_value_errors():
    for secrets in ([], [""], ""):
        with pytest.raises(ValueError) as caught:
            verify_signature(BODY, _headers(), secrets, now_s=NOW)
        assert not isinstance(caught.value, WebhookSignatureError)
    with pytest.raises(ValueError):
        signature_headers(BODY, "ev 1", "t", [NEW], NOW)
    with pytest.raises(ValueError):
        signature_headers(BODY, "ev_1\r\nX-Injected: 1", "t", [NEW], NOW)
    with pytest.raises(ValueError):
        signature_headers(BODY, "ev_1", "t", [], NOW)


# --- where a webhook may be sent --------------------------------------------------------------

@pytest.mark.parametrize("url, private_ok, public_ok", [
    ("https://hooks.example.com/coditect", True, True),
    ("https://hooks.example.com:8443/c?x=1", True, True),
    ("HTTPS://hooks.example.com/", True, True),
    ("http://hooks.example.com/coditect", True, False),
    ("http://127.0.0.1:9000/hook", True, False),
    ("http://localhost:9000/hook", True, False),
    ("https://[::1]/hook", True, False),
    ("https://10.0.0.1/hook", True, False),
    ("https://8.8.8.8/hook", True, True),
    ("https://user:pass@hooks.example.com/", False, False),
    ("https://user@hooks.example.com/", False, False),
    ("https://hooks.example.com/#frag", False, False),
    ("https://hooks.example.com/#", False, False),
    ("https://hooks.example.com/" + "a" * 2030, False, False),
    ("ftp://hooks.example.com/", False, False),
    ("hooks.example.com/coditect", False, False),
    ("https:///coditect", False, False),
    ("https://hooks.example.com:99999/", False, False),
    ("https://hooks.example.com:0/", False, False),
    ("https://hooks.exa mple.com/", False, False),
    ("https://hooks.example.com/\nX", False, False),
    ("https://bücher.example/", False, False),
    ("https://metadata.google.internal/computeMetadata/v1/", False, False),
    ("https://169.254.169.254/latest/meta-data/", True, False),
    ("https://db.corp.internal/", True, False),
    ("https://2130706433/", False, False),
    ("https://127.1/", False, False),
    ("", False, False),
])
def test_url_rules(url, private_ok, public_ok):
    assert (webhook_url_problem(url, allow_private=True) is None) is private_ok, url
    assert (webhook_url_problem(url, allow_private=False) is None) is public_ok, url


def test_url_length_limit_is_2048_characters():
    base = "https://hooks.example.com/"
    assert webhook_url_problem(base + "a" * (2048 - len(base)), allow_private=False) is None
    assert "2048" in (webhook_url_problem(base + "a" * (2049 - len(base)), allow_private=False) or "")


def test_url_problems_say_what_is_wrong():
    assert "https" in (webhook_url_problem("http://hooks.example.com/", allow_private=False) or "")
    assert "user" in (webhook_url_problem("https://u:p@hooks.example.com/", allow_private=False) or "")
    assert "fragment" in (webhook_url_problem("https://hooks.example.com/#x", allow_private=False) or "")


REFUSED = ["10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "::1", "169.254.169.254", "fe80::1",
           "100.64.0.1", "0.0.0.0", "224.0.0.1", "::ffff:10.0.0.1", "::", "fc00::1", "fd12:3456::1",
           "ff02::1", "255.255.255.255", "240.0.0.1", "192.0.2.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
           "2002:a00:1::1", "64:ff9b::a00:1", "fe80::1%eth0", "fd00:ec2::254", "127.255.255.254"]
PUBLIC = ["8.8.8.8", "2001:4860:4860::8888", "1.1.1.1", "::ffff:8.8.8.8", "2606:4700:4700::1111"]


@pytest.mark.parametrize("ip", REFUSED)
def test_non_public_addresses_are_refused(ip):
    problem = address_problem(ip, allow_private=False)
    assert problem is not None and problem.startswith(ip)


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_fine(ip):
    assert address_problem(ip, allow_private=False) is None


@pytest.mark.parametrize("ip", REFUSED + PUBLIC)
def test_every_address_is_fine_in_the_local_stack(ip):
    assert address_problem(ip, allow_private=True) is None


@pytest.mark.parametrize("ip, words", [
    ("10.0.0.1", "private"), ("127.0.0.1", "loopback"), ("169.254.169.254", "metadata"), ("fe80::1", "link-local"),
    ("100.64.0.1", "CGNAT"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"), ("::ffff:10.0.0.1", "10.0.0.1"),
])
def test_address_problems_say_why(ip, words):
    assert words in (address_problem(ip, allow_private=False) or "")


def test_something_that_is_no_address_is_refused_even_locally():
    assert address_problem("example.com", allow_private=True) is not None


@pytest.mark.parametrize("host, private_ok, public_ok", [
    ("metadata.google.internal", False, False),
    ("METADATA.google.internal.", False, False),
    ("metadata", False, False),
    ("localhost", True, False),
    ("api.localhost", True, False),
    ("db.corp.internal", True, False),
    ("hooks.example.com", True, True),
    ("internal.example.com", True, True),
    ("0x7f.1", False, False),
    ("", False, False),
])
def test_host_names(host, private_ok, public_ok):
    assert (host_problem(host, allow_private=True) is None) is private_ok
    assert (host_problem(host, allow_private=False) is None) is public_ok
    assert (host_problem(host) is None) is public_ok


def _resolver(*addresses: str, calls: list | None = None):
    def resolve(host, port):
        if calls is not None:
            calls.append((host, port))
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in addresses]
    return resolve


def test_resolve_and_check_returns_every_checked_address_once_in_order():
    calls: list = []
    resolver = _resolver("8.8.8.8", "2001:4860:4860::8888", "8.8.8.8", calls=calls)
    assert resolve_and_check("hooks.example.com", 443, allow_private=False, resolver=resolver) == [
        "8.8.8.8", "2001:4860:4860::8888"]
    assert calls == [("hooks.example.com", 443)]


@pytest.mark.parametrize("bad", ["10.0.0.1", "169.254.169.254", "::1", "::ffff:192.168.0.1"])
def test_one_bad_address_refuses_the_whole_host(bad):
    resolver = _resolver("8.8.8.8", bad)
    with pytest.raises(WebhookAddressError) as caught:
        resolve_and_check("rebind.example.com", 443, allow_private=False, resolver=resolver)
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.host, error.address) == ("rebind.example.com", bad)
    assert bad in str(error) and "rebind.example.com" in str(error) and error.problem in str(error)


def test_private_addresses_resolve_fine_in_the_local_stack():
    resolver = _resolver("127.0.0.1", "::1")
    assert resolve_and_check("localhost", 9000, allow_private=True, resolver=resolver) == ["127.0.0.1", "::1"]


def test_refused_names_are_not_even_resolved():
    calls: list = []
    with pytest.raises(WebhookAddressError) as caught:
        resolve_and_check("metadata.google.internal", 80, allow_private=True, resolver=_resolver("8.8.8.8",
                                                                                               calls=calls))
    assert calls == [] and caught.value.address is None


def test_a_name_that_does_not_resolve_is_refused():
    def failing(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    with pytest.raises(WebhookAddressError, match="does not resolve"):
        resolve_and_check("nowhere.example.com", 443, allow_private=False, resolver=failing)
    with pytest.raises(WebhookAddressError, match="no address"):
        resolve_and_check("empty.example.com", 443, allow_private=False, resolver=_resolver())


def test_the_real_resolver_is_called_the_documented_way():
    assert resolve_and_check("127.0.0.1", 443, allow_private=True) == ["127.0.0.1"]
    with pytest.raises(WebhookAddressError):
        resolve_and_check("127.0.0.1", 443, allow_private=False)


# --- when to try again ------------------------------------------------------------------------

@pytest.mark.parametrize("status, retry, done", [
    (None, True, False),
    (200, False, True), (204, False, True), (301, False, True), (302, False, True),
    (400, False, False), (401, False, False), (403, False, False), (404, False, False), (410, False, False),
    (413, False, False), (422, False, False),
    (408, True, False), (429, True, False),
    (500, True, False), (502, True, False), (503, True, False), (504, True, False),
    (100, True, False), (600, True, False),
])
def test_retry_table(status, retry, done):
    assert RETRYABLE(status) is retry
    assert delivered(status) is done


def test_delays_start_at_30_s_double_and_stop_at_an_hour():
    assert [next_attempt_delay_s(n) for n in range(1, 11)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert next_attempt_delay_s(10_000) == 3600
    for bad in (0, -1):
        with pytest.raises(ValueError):
            next_attempt_delay_s(bad)


def test_the_documented_schedule_gives_up_after_a_day():
    times = attempt_times_s()
    assert GIVE_UP_AFTER_S == 86_400
    assert times[:9] == [0, 30, 90, 210, 450, 930, 1890, 3810, 7410]
    assert all(b - a == 3600 for a, b in zip(times[8:], times[9:], strict=False))
    assert len(times) == 30 and times[-1] == 83_010
    assert times[-1] + next_attempt_delay_s(len(times)) > GIVE_UP_AFTER_S
